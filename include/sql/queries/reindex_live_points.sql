-- What may have a point, for a reindex pass's sweep: albums ever enriched and not deleted, the
-- current items of those albums, and the indexed posts outside albums, of the given channels.
SELECT 'album' AS kind, g.id AS album_id, g.channel_id, NULL::bigint AS message_id
FROM media_groups g
WHERE g.channel_id = ANY(%(channel_ids)s) AND g.deleted_at IS NULL AND g.enriched_hash IS NOT NULL
UNION ALL
SELECT 'post', g.id, p.channel_id, p.message_id
FROM media_group_items i
JOIN media_groups g ON g.id = i.group_id
JOIN posts p ON p.channel_id = g.channel_id AND p.message_id = i.message_id
WHERE g.channel_id = ANY(%(channel_ids)s) AND g.deleted_at IS NULL AND g.enriched_hash IS NOT NULL
  AND p.deleted_at IS NULL
UNION ALL
SELECT 'post', NULL, p.channel_id, p.message_id
FROM posts p
WHERE p.channel_id = ANY(%(channel_ids)s) AND p.grouped_id IS NULL AND p.deleted_at IS NULL
  AND p.indexed_at IS NOT NULL;
