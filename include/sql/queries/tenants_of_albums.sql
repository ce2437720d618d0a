-- album_tenants for several albums at once.
SELECT g.id AS album_id, s.tenant_id FROM subscriptions s
JOIN media_groups g ON g.channel_id = s.channel_id
WHERE g.id = ANY(%(album_ids)s)
ORDER BY g.id, s.tenant_id;
