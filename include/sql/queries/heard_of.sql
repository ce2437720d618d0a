-- The heard messages a pull above the mark can take instead of asking: in its id range, heard
-- recently enough that their file references still hold.
SELECT message_id, message
FROM heard_messages
WHERE channel_id = %(channel_id)s AND message_id > %(hwm)s AND message_id <= %(last)s
  AND heard_at > now() - %(fresh)s::interval
ORDER BY message_id;
