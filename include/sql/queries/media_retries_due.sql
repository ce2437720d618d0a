-- The messages of a channel whose media (or preview) is due to be fetched again, oldest first.
SELECT DISTINCT r.message_id
FROM media_retries r
JOIN posts p USING (channel_id, message_id)
WHERE r.channel_id = %(channel_id)s AND r.retry_after <= %(now)s AND p.deleted_at IS NULL
ORDER BY r.message_id
LIMIT %(limit)s;
