SELECT id, access_hash, username, title, hwm, is_active, flood_wait_until, top_message, in_dialogs
FROM channels
WHERE id = %(channel_id)s;
