SELECT g.id, g.channel_id, c.username, g.grouped_id, g.album_kind, g.items_count, g.caption_text, g.status,
       g.posted_at, g.meta
FROM media_groups g
JOIN channels c ON c.id = g.channel_id
WHERE g.id = ANY(%(album_ids)s) AND g.deleted_at IS NULL;
