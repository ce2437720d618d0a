-- Every live post of these albums: grouping always sees the whole album, not one pull.
SELECT grouped_id, message_id, text, posted_at, media_kind, media_sha256, thumb_sha256
FROM posts
WHERE channel_id = %(channel_id)s AND grouped_id = ANY(%(grouped_ids)s) AND deleted_at IS NULL
ORDER BY grouped_id, message_id;
