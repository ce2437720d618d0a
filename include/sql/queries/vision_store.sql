INSERT INTO vision_results (sha256, provider_key, result, skip_reason, skip_detail, duration_ms)
VALUES (%(sha256)s, %(provider_key)s, %(result)s, %(skip_reason)s, %(skip_detail)s, %(duration_ms)s)
ON CONFLICT (sha256, provider_key) DO NOTHING;
