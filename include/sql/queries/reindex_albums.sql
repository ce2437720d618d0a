-- The next batch of a reindex pass: albums enriched for their current composition, in id order
-- after the last one written; a catch-up pass takes only those enriched or indexed since.
SELECT g.id FROM media_groups g
WHERE g.channel_id = ANY(%(channel_ids)s) AND g.id > %(after)s
  AND g.deleted_at IS NULL AND g.enriched_hash = g.content_hash
  AND (%(since)s::timestamptz IS NULL OR g.enriched_at >= %(since)s OR g.indexed_at >= %(since)s)
ORDER BY g.id
LIMIT %(limit)s;
