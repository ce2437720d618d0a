SELECT c.id, c.username, c.title, c.is_active, c.state, c.state_reason, c.state_since, c.hwm, c.top_message,
       c.in_dialogs, c.flood_wait_until, c.last_pulled_at, c.last_error, c.last_error_at, c.failures,
       coalesce(array_agg(s.tenant_id ORDER BY s.tenant_id) FILTER (WHERE s.tenant_id IS NOT NULL), '{}') AS tenants
FROM channels c
LEFT JOIN subscriptions s ON s.channel_id = c.id
GROUP BY c.id
ORDER BY c.id;
