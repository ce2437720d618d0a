-- Albums not (fully) assembled and indexed for their current composition: new, changed,
-- waiting, partial, or enriched but not indexed since.
SELECT id FROM media_groups
WHERE status <> 'assembled'
   OR (meta -> 'enrichment' ->> 'content_hash') IS DISTINCT FROM content_hash
   OR (meta -> 'index' ->> 'enrichment_assembled_at') IS DISTINCT FROM (meta -> 'enrichment' ->> 'assembled_at')
ORDER BY id;
