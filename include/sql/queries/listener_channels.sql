-- The channels the listener hears: active, subscribed, not set aside; id -> access_hash.
SELECT c.id, c.access_hash
FROM channels c
WHERE c.is_active AND c.state = 'active' AND EXISTS (SELECT 1 FROM subscriptions s WHERE s.channel_id = c.id)
ORDER BY c.id;
