-- S3 objects (media and previews) of live posts dated in [since, until).
SELECT DISTINCT m.s3_key FROM posts p
JOIN media_objects m ON m.sha256 IN (p.media_sha256, p.thumb_sha256)
WHERE p.deleted_at IS NULL AND p.posted_at >= %(since)s AND p.posted_at < %(until)s
ORDER BY m.s3_key;
