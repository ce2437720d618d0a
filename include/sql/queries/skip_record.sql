INSERT INTO ingest_skips (channel_id, ref, reason, detail)
VALUES (%(channel_id)s, %(ref)s, %(reason)s, %(detail)s)
ON CONFLICT (channel_id, ref, reason) DO UPDATE
SET detail = EXCLUDED.detail, last_seen_at = now();
