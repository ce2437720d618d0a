-- Which of these messages are stored as posts already.
SELECT message_id FROM posts WHERE channel_id = %(channel_id)s AND message_id = ANY(%(message_ids)s);
