SELECT id, access_hash, username, title, hwm, is_active, flood_wait_until
FROM channels
WHERE id = %(channel_id)s;
