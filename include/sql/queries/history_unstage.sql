-- Kept messages now stored as posts.
DELETE FROM history_staged WHERE channel_id = %(channel_id)s AND message_id = ANY(%(message_ids)s);
