SELECT s.tenant_id FROM subscriptions s
JOIN media_groups g ON g.channel_id = s.channel_id
WHERE g.id = %(album_id)s
ORDER BY s.tenant_id;
