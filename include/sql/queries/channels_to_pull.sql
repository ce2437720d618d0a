-- Active channels with at least one subscribing tenant, in a stable order; an unavailable one
-- only when its re-check is due.
SELECT c.id, c.access_hash, c.username, c.title, c.hwm, c.is_active, c.flood_wait_until, c.top_message,
       c.in_dialogs, c.state, EXISTS (SELECT 1 FROM media_to_refetch(c.id)) AS media_pending
FROM channels c
WHERE c.is_active AND EXISTS (SELECT 1 FROM subscriptions s WHERE s.channel_id = c.id)
  AND (c.state = 'active' OR c.checked_at <= now() - make_interval(hours => %(recheck_hours)s))
ORDER BY c.id;
