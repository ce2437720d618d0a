DELETE FROM subscriptions WHERE tenant_id = %(tenant_id)s AND channel_id = %(channel_id)s;
