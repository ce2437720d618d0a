INSERT INTO subscriptions (tenant_id, channel_id) VALUES (%(tenant_id)s, %(channel_id)s)
ON CONFLICT DO NOTHING;
