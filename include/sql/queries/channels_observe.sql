-- What Telegram said each channel's newest message is, in one statement for the whole run.
UPDATE channels c
SET top_message = seen.top_message, in_dialogs = seen.in_dialogs, top_checked_at = now()
FROM unnest(%(channel_ids)s::bigint[], %(top_messages)s::bigint[], %(in_dialogs)s::boolean[])
     AS seen(id, top_message, in_dialogs)
WHERE c.id = seen.id;
