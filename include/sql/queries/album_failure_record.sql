-- One more failed try of an album step; attempts restart when the composition changed.
INSERT INTO album_failures AS f (album_id, content_hash, step, error, quarantined_at)
VALUES (%(album_id)s, %(content_hash)s, %(step)s, %(error)s, CASE WHEN %(quarantine)s THEN now() END)
ON CONFLICT (album_id) DO UPDATE
SET attempts = CASE WHEN f.content_hash = EXCLUDED.content_hash THEN f.attempts + 1 ELSE 1 END,
    first_failed_at = CASE WHEN f.content_hash = EXCLUDED.content_hash THEN f.first_failed_at ELSE now() END,
    content_hash = EXCLUDED.content_hash, step = EXCLUDED.step, error = EXCLUDED.error,
    last_failed_at = now(), quarantined_at = EXCLUDED.quarantined_at
RETURNING attempts;
