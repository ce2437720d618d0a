-- A message of a history page from beyond its day, kept until its own day is imported.
INSERT INTO history_staged (channel_id, message_id, posted_at, grouped_id, message)
VALUES (%(channel_id)s, %(message_id)s, %(posted_at)s, %(grouped_id)s, %(message)s)
ON CONFLICT (channel_id, message_id) DO UPDATE
SET posted_at = EXCLUDED.posted_at, grouped_id = EXCLUDED.grouped_id, message = EXCLUDED.message,
    fetched_at = now();
