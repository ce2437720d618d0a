-- Active channels with at least one subscribing tenant, in a stable order; an unavailable one
-- only when its re-check is due. media_pending: media of earlier posts due to be fetched again.
SELECT c.id, c.access_hash, c.username, c.title, c.hwm, c.is_active, c.flood_wait_until, c.top_message, c.top_checked_at,
       c.in_dialogs, c.state, c.hinted_at, c.last_error_at,
       EXISTS (SELECT 1 FROM media_retries r JOIN posts p USING (channel_id, message_id)
               WHERE r.channel_id = c.id AND r.retry_after <= %(now)s AND p.deleted_at IS NULL) AS media_pending
FROM channels c
WHERE c.is_active AND EXISTS (SELECT 1 FROM subscriptions s WHERE s.channel_id = c.id)
  AND (c.state = 'active' OR c.checked_at <= now() - make_interval(hours => %(recheck_hours)s))
ORDER BY c.id;
