SELECT channel_id, message_id, grouped_id, text, posted_at, media_kind, media_sha256, thumb_sha256,
       media_skip_reason, deleted_at
FROM posts
ORDER BY channel_id, message_id;
