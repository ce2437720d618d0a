-- Album items with what vision needs: the stored media (or its preview), why it is missing, and
-- whether a later pull fetches it again (media_retries).
SELECT i.position, i.message_id, i.media_kind, i.sha256, i.thumb_sha256,
       m.mime, m.s3_key, t.s3_key AS thumb_s3_key, p.media_skip_reason,
       EXISTS (SELECT 1 FROM media_retries r WHERE r.channel_id = g.channel_id AND r.message_id = i.message_id
                                               AND r.part = 'media') AS media_pending,
       EXISTS (SELECT 1 FROM media_retries r WHERE r.channel_id = g.channel_id AND r.message_id = i.message_id
                                               AND r.part = 'preview') AS preview_pending
FROM media_group_items i
JOIN media_groups g ON g.id = i.group_id
LEFT JOIN posts p ON p.channel_id = g.channel_id AND p.message_id = i.message_id
LEFT JOIN media_objects m ON m.sha256 = i.sha256
LEFT JOIN media_objects t ON t.sha256 = i.thumb_sha256
WHERE i.group_id = %(album_id)s
ORDER BY i.position;
