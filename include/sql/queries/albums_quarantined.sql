SELECT f.album_id, c.username, g.channel_id, g.grouped_id, f.step, f.error, f.attempts, f.first_failed_at,
       f.quarantined_at, f.content_hash = g.content_hash AS current
FROM album_failures f
JOIN media_groups g ON g.id = f.album_id
JOIN channels c ON c.id = g.channel_id
WHERE f.quarantined_at IS NOT NULL
ORDER BY f.album_id;
