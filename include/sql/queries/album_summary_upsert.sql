INSERT INTO album_summaries (album_id, content_hash, provider_key, status, summary)
VALUES (%(album_id)s, %(content_hash)s, %(provider_key)s, %(status)s, %(summary)s)
ON CONFLICT (album_id) DO UPDATE
SET content_hash = EXCLUDED.content_hash, provider_key = EXCLUDED.provider_key, status = EXCLUDED.status,
    summary = EXCLUDED.summary, computed_at = now();
