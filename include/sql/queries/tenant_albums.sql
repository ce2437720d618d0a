-- A page of a tenant's albums, newest first (the albums view): those after the cursor (the last
-- album of the previous page: its posted_at and id), of one channel if given. Asks for one
-- more than the page holds, to know whether a next page exists.
SELECT g.id, g.channel_id, c.username, g.grouped_id, g.album_kind, g.items_count, g.caption_text, g.status,
       g.posted_at, g.meta
FROM media_groups g
JOIN channels c ON c.id = g.channel_id
JOIN subscriptions s ON s.channel_id = g.channel_id AND s.tenant_id = %(tenant_id)s
WHERE g.deleted_at IS NULL
  AND (%(channel_id)s::bigint IS NULL OR g.channel_id = %(channel_id)s::bigint)
  AND (%(after_posted_at)s::timestamptz IS NULL
       OR (g.posted_at, g.id) < (%(after_posted_at)s::timestamptz, %(after_id)s::bigint))
ORDER BY g.posted_at DESC, g.id DESC
LIMIT %(limit)s + 1;
