-- Only for the album's current composition: a summary computed for one that changed meanwhile
-- (the other DAG recomposed it) never replaces the summary of the new one.
INSERT INTO album_summaries (album_id, content_hash, provider_key, status, summary)
SELECT %(album_id)s, %(content_hash)s, %(provider_key)s, %(status)s, %(summary)s
WHERE EXISTS (SELECT 1 FROM media_groups WHERE id = %(album_id)s AND content_hash = %(content_hash)s)
ON CONFLICT (album_id) DO UPDATE
SET content_hash = EXCLUDED.content_hash, provider_key = EXCLUDED.provider_key, status = EXCLUDED.status,
    summary = EXCLUDED.summary, computed_at = now();
