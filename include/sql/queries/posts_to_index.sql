-- Posts outside albums that are new or changed since they were indexed, with their image.
SELECT p.channel_id, p.message_id, p.updated_at, p.text, p.posted_at, p.media_kind, p.media_sha256 AS sha256,
       p.thumb_sha256, m.mime, m.s3_key, t.s3_key AS thumb_s3_key, p.media_skip_reason,
       EXISTS (SELECT 1 FROM media_retries r WHERE r.channel_id = p.channel_id AND r.message_id = p.message_id
                                               AND r.part = 'media') AS media_pending,
       EXISTS (SELECT 1 FROM media_retries r WHERE r.channel_id = p.channel_id AND r.message_id = p.message_id
                                               AND r.part = 'preview') AS preview_pending
FROM posts p
LEFT JOIN media_objects m ON m.sha256 = p.media_sha256
LEFT JOIN media_objects t ON t.sha256 = p.thumb_sha256
WHERE p.grouped_id IS NULL AND p.deleted_at IS NULL AND p.indexed_version IS DISTINCT FROM p.updated_at
ORDER BY p.channel_id, p.message_id
LIMIT %(limit)s;
