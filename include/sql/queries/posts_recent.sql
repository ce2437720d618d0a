-- Live posts of a channel dated in [since, until): what the refresh re-reads from Telegram.
SELECT message_id FROM posts
WHERE channel_id = %(channel_id)s AND deleted_at IS NULL AND posted_at >= %(since)s AND posted_at < %(until)s
ORDER BY message_id;
