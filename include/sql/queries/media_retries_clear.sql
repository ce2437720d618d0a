-- Media stored at last, or given up (a terminal skip says why): nothing more to fetch again.
DELETE FROM media_retries
WHERE channel_id = %(channel_id)s AND part = %(part)s AND message_id = ANY(%(message_ids)s);
