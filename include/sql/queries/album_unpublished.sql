-- A tombstoned album taken out of S3, Qdrant and the graph: nothing of it is published any more.
UPDATE media_groups
SET meta = meta - 'enrichment' - 'index', status = 'open', enriched_hash = NULL, enriched_at = NULL,
    indexed_version = NULL, indexed_at = NULL, updated_at = now()
WHERE id = %(album_id)s AND deleted_at IS NOT NULL;
