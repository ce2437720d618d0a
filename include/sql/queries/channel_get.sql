SELECT id, access_hash, username, title, hwm, is_active, flood_wait_until, top_message, in_dialogs, state,
       EXISTS (SELECT 1 FROM media_to_refetch(id)) AS media_pending
FROM channels
WHERE id = %(channel_id)s;
