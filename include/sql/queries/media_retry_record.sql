-- Media left to fetch again: one more failed try (tried = 1) or a wait (tried = 0), the last
-- error, and not before retry_after.
INSERT INTO media_retries AS r (channel_id, message_id, part, tries, last_error, first_failed_at, last_failed_at,
                                retry_after)
VALUES (%(channel_id)s, %(message_id)s, %(part)s, %(tried)s, %(error)s, %(now)s, %(now)s, %(retry_after)s)
ON CONFLICT (channel_id, message_id, part) DO UPDATE
SET tries = r.tries + EXCLUDED.tries, last_error = EXCLUDED.last_error, last_failed_at = EXCLUDED.last_failed_at,
    retry_after = EXCLUDED.retry_after;
