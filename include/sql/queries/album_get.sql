SELECT g.id, g.channel_id, c.username, g.grouped_id, g.album_kind, g.items_count, g.caption_text, g.posted_at,
       g.content_hash, g.status AS state, g.meta, g.composed_at, g.deleted_at, g.enriched_hash, g.enriched_at,
       g.indexed_version,
       EXISTS (SELECT 1 FROM album_failures f WHERE f.album_id = g.id AND f.quarantined_at IS NOT NULL
               AND f.content_hash = g.content_hash) AS quarantined
FROM media_groups g
JOIN channels c ON c.id = g.channel_id
WHERE g.id = %(album_id)s;
