-- Heard messages Telegram says were deleted: the pull asks for them (and finds them gone).
DELETE FROM heard_messages h
USING unnest(%(channel_ids)s::bigint[], %(message_ids)s::bigint[]) AS gone(channel_id, message_id)
WHERE h.channel_id = gone.channel_id AND h.message_id = gone.message_id;
