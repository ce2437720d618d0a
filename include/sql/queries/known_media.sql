-- Media already stored for these Telegram file ids: no second download (reposts, reruns).
SELECT DISTINCT ON (p.media_file_id)
       p.media_file_id,
       m.sha256, m.mime, m.size_bytes, m.s3_key, m.width, m.height,
       t.sha256 AS thumb_sha256, t.mime AS thumb_mime, t.size_bytes AS thumb_size, t.s3_key AS thumb_s3_key,
       t.width AS thumb_width, t.height AS thumb_height
FROM posts p
JOIN media_objects m ON m.sha256 = p.media_sha256
LEFT JOIN media_objects t ON t.sha256 = p.thumb_sha256
WHERE p.media_file_id = ANY(%(file_ids)s)
ORDER BY p.media_file_id, p.thumb_sha256 NULLS LAST;
