SELECT s.tenant_id, c.id AS channel_id, c.username, c.title
FROM subscriptions s JOIN channels c ON c.id = s.channel_id
WHERE c.id = ANY(%(channel_ids)s)
ORDER BY s.tenant_id, c.id;
