-- The newest stored post at or below a channel's mark: where its last live pull ended.
SELECT posted_at FROM posts
WHERE channel_id = %(channel_id)s AND message_id <= %(hwm)s
ORDER BY message_id DESC
LIMIT 1;
