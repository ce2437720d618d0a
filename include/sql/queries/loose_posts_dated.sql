-- Live posts outside albums dated in [since, until), with what indexing reads; settled = the
-- index holds their current version.
SELECT p.channel_id, p.message_id, p.text, p.posted_at, p.media_kind, p.media_sha256 AS sha256,
       p.thumb_sha256, m.mime, m.s3_key, t.s3_key AS thumb_s3_key, p.media_skip_reason,
       EXISTS (SELECT 1 FROM media_retries r WHERE r.channel_id = p.channel_id AND r.message_id = p.message_id
                                               AND r.part = 'media') AS media_pending,
       EXISTS (SELECT 1 FROM media_retries r WHERE r.channel_id = p.channel_id AND r.message_id = p.message_id
                                               AND r.part = 'preview') AS preview_pending,
       coalesce(p.indexed_version = p.updated_at, false) AS settled
FROM posts p
LEFT JOIN media_objects m ON m.sha256 = p.media_sha256
LEFT JOIN media_objects t ON t.sha256 = p.thumb_sha256
WHERE p.grouped_id IS NULL AND p.deleted_at IS NULL AND p.posted_at >= %(since)s AND p.posted_at < %(until)s
ORDER BY p.channel_id, p.message_id;
