-- The username and title Telegram shows now; renamed_at until the graph's Channel node has them.
UPDATE channels
SET username = %(username)s, title = %(title)s, renamed_at = now(), updated_at = now()
WHERE id = %(channel_id)s;
