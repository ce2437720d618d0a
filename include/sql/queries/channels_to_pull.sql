-- Active channels with at least one subscribing tenant, in a stable order.
SELECT c.id, c.access_hash, c.username, c.title, c.hwm, c.is_active, c.flood_wait_until, c.top_message,
       c.in_dialogs
FROM channels c
WHERE c.is_active AND EXISTS (SELECT 1 FROM subscriptions s WHERE s.channel_id = c.id)
ORDER BY c.id;
