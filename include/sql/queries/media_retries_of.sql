-- The retry state of these messages' media: how often it failed, since when.
SELECT message_id, part, tries, first_failed_at, last_error
FROM media_retries
WHERE channel_id = %(channel_id)s AND message_id = ANY(%(message_ids)s);
