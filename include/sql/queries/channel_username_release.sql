-- A username another channel now holds on Telegram: the channel that held it let it go.
UPDATE channels
SET username = NULL, renamed_at = now(), updated_at = now()
WHERE lower(username) = lower(%(username)s) AND id <> %(channel_id)s;
