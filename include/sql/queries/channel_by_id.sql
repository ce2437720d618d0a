SELECT c.id, c.access_hash, c.username, c.title, c.hwm, c.is_active, c.flood_wait_until, c.top_message, c.top_checked_at,
       c.in_dialogs, c.state,
       EXISTS (SELECT 1 FROM media_retries r JOIN posts p USING (channel_id, message_id)
               WHERE r.channel_id = c.id AND r.retry_after <= %(now)s AND p.deleted_at IS NULL) AS media_pending
FROM channels c
WHERE c.id = %(channel_id)s;
