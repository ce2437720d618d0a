-- The channels a tenant reads (tenant NULL: every registered channel), with their names.
SELECT c.id, c.username, c.title FROM channels c
WHERE %(tenant_id)s::text IS NULL
   OR EXISTS (SELECT 1 FROM subscriptions s WHERE s.channel_id = c.id AND s.tenant_id = %(tenant_id)s)
ORDER BY c.id;
