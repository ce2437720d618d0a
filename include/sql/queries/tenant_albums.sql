-- A tenant's albums, newest first (the albums view).
SELECT g.id, g.channel_id, c.username, g.grouped_id, g.album_kind, g.items_count, g.caption_text, g.status,
       g.posted_at, g.meta
FROM media_groups g
JOIN channels c ON c.id = g.channel_id
JOIN subscriptions s ON s.channel_id = g.channel_id AND s.tenant_id = %(tenant_id)s
WHERE g.deleted_at IS NULL
ORDER BY g.posted_at DESC, g.id DESC
LIMIT %(limit)s;
