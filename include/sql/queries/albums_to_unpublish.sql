-- Tombstoned albums still published somewhere (S3 summaries, Qdrant, graph).
SELECT id, channel_id, meta -> 'enrichment' -> 's3_keys' AS s3_keys
FROM media_groups
WHERE deleted_at IS NOT NULL AND (enriched_at IS NOT NULL OR indexed_at IS NOT NULL)
ORDER BY id
LIMIT %(limit)s;
