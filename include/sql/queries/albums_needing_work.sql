-- Albums not (fully) assembled and indexed for their current composition: new, changed,
-- waiting, partial, or enriched but not indexed since. Tombstoned albums and albums
-- quarantined for this very composition are left out.
SELECT g.id FROM media_groups g
WHERE g.deleted_at IS NULL
  AND (g.status <> 'assembled'
       OR (g.meta -> 'enrichment' ->> 'content_hash') IS DISTINCT FROM g.content_hash
       OR (g.meta -> 'index' ->> 'enrichment_assembled_at') IS DISTINCT FROM (g.meta -> 'enrichment' ->> 'assembled_at'))
  AND NOT EXISTS (SELECT 1 FROM album_failures f
                  WHERE f.album_id = g.id AND f.quarantined_at IS NOT NULL AND f.content_hash = g.content_hash)
ORDER BY g.id;
