-- Messages the listener heard (new, or edited before they were pulled), for the pull its hint
-- starts. Only above the channel's mark: a stored post's edit is the refresh's. The latest
-- version heard replaces an earlier one.
INSERT INTO heard_messages (channel_id, message_id, message)
SELECT heard.channel_id, heard.message_id, heard.message
FROM unnest(%(channel_ids)s::bigint[], %(message_ids)s::bigint[], %(messages)s::bytea[])
     AS heard(channel_id, message_id, message)
JOIN channels c ON c.id = heard.channel_id
WHERE heard.message_id > c.hwm
ON CONFLICT (channel_id, message_id) DO UPDATE SET message = EXCLUDED.message, heard_at = now();
