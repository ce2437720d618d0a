-- Adding a channel again re-activates it, and re-enables it if Telegram had refused it.
INSERT INTO channels (id, access_hash, username, title, is_active)
VALUES (%(id)s, %(access_hash)s, %(username)s, %(title)s, true)
ON CONFLICT (id) DO UPDATE
SET access_hash = EXCLUDED.access_hash, username = EXCLUDED.username, title = EXCLUDED.title,
    is_active = true, state = 'active', state_reason = NULL, state_since = NULL, checked_at = NULL,
    updated_at = now();
