UPDATE channels SET is_active = false, updated_at = now() WHERE id = %(channel_id)s;
