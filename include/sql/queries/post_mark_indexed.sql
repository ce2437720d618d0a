-- The index holds this version of the post (its updated_at when it was read for indexing).
UPDATE posts SET indexed_at = %(indexed_at)s, indexed_version = %(version)s
WHERE channel_id = %(channel_id)s AND message_id = %(message_id)s;
