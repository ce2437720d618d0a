UPDATE channels SET flood_wait_until = %(flood_wait_until)s, updated_at = now() WHERE id = %(channel_id)s;
