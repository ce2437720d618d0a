UPDATE posts SET indexed_at = %(indexed_at)s
WHERE channel_id = %(channel_id)s AND message_id = %(message_id)s;
