-- Messages gone from Telegram: keep the row, mark it deleted (removed from the index later).
UPDATE posts SET deleted_at = now(), updated_at = now()
WHERE channel_id = %(channel_id)s AND message_id = ANY(%(message_ids)s) AND deleted_at IS NULL
RETURNING message_id, grouped_id;
