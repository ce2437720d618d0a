INSERT INTO channels (id, access_hash, username, title, is_active)
VALUES (%(id)s, %(access_hash)s, %(username)s, %(title)s, true)
ON CONFLICT (id) DO UPDATE
SET access_hash = EXCLUDED.access_hash, username = EXCLUDED.username, title = EXCLUDED.title,
    is_active = true, updated_at = now();
