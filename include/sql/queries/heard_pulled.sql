-- Heard messages at or below the channel's (new) mark: stored, or gone.
DELETE FROM heard_messages
WHERE channel_id = %(channel_id)s AND message_id <= (SELECT hwm FROM channels WHERE id = %(channel_id)s);
