-- Tombstoned albums still published somewhere (S3 summaries, Qdrant, graph).
SELECT id, channel_id, meta -> 'enrichment' -> 's3_keys' AS s3_keys
FROM media_groups
WHERE deleted_at IS NOT NULL AND (meta ? 'enrichment' OR meta ? 'index')
ORDER BY id
LIMIT %(limit)s;
