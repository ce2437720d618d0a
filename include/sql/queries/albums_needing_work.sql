-- Albums not (fully) assembled and indexed for their current composition: new, changed,
-- waiting, partial, or enriched but not indexed since (domain/lifecycle.py). Tombstoned albums
-- and albums quarantined for this very composition are left out.
SELECT g.id FROM media_groups g
WHERE g.deleted_at IS NULL
  AND (g.status <> 'assembled'
       OR g.enriched_hash IS DISTINCT FROM g.content_hash
       OR g.indexed_version IS DISTINCT FROM g.enriched_at)
  AND NOT EXISTS (SELECT 1 FROM album_failures f
                  WHERE f.album_id = g.id AND f.quarantined_at IS NOT NULL AND f.content_hash = g.content_hash)
ORDER BY g.id;
