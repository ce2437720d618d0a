-- Albums not (fully) assembled for their current composition: new, changed, waiting or partial.
SELECT id FROM media_groups
WHERE status <> 'assembled' OR (meta -> 'enrichment' ->> 'content_hash') IS DISTINCT FROM content_hash
ORDER BY id;
