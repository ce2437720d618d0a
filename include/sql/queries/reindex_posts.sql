-- The next batch of a reindex pass: posts outside albums that the DAG indexed (as posts_to_index
-- reads them), in key order after the last one written; a catch-up pass takes those indexed since.
SELECT p.channel_id, p.message_id, p.updated_at, p.text, p.posted_at, p.media_kind, p.media_sha256 AS sha256,
       p.thumb_sha256, m.mime, m.s3_key, t.s3_key AS thumb_s3_key, p.media_skip_reason,
       EXISTS (SELECT 1 FROM media_retries r WHERE r.channel_id = p.channel_id AND r.message_id = p.message_id
                                               AND r.part = 'media') AS media_pending,
       EXISTS (SELECT 1 FROM media_retries r WHERE r.channel_id = p.channel_id AND r.message_id = p.message_id
                                               AND r.part = 'preview') AS preview_pending
FROM posts p
LEFT JOIN media_objects m ON m.sha256 = p.media_sha256
LEFT JOIN media_objects t ON t.sha256 = p.thumb_sha256
WHERE p.channel_id = ANY(%(channel_ids)s) AND (p.channel_id, p.message_id) > (%(after_channel)s, %(after_message)s)
  AND p.grouped_id IS NULL AND p.deleted_at IS NULL AND p.indexed_at IS NOT NULL
  AND (%(since)s::timestamptz IS NULL OR p.indexed_at >= %(since)s)
ORDER BY p.channel_id, p.message_id
LIMIT %(limit)s;
