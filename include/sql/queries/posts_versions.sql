-- The version of posts (to tell which ones a refresh changed).
SELECT message_id, updated_at, deleted_at FROM posts
WHERE channel_id = %(channel_id)s AND message_id = ANY(%(message_ids)s);
