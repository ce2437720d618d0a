-- What Telegram said each channel's newest message is, in one statement for the whole run. A
-- channel whose newest message is stored has nothing outstanding: a failure recorded earlier
-- (of a pull, or of asking) is cleared.
UPDATE channels c
SET top_message = seen.top_message, in_dialogs = seen.in_dialogs, top_checked_at = now(),
    last_error = CASE WHEN seen.top_message <= c.hwm THEN NULL ELSE c.last_error END,
    last_error_at = CASE WHEN seen.top_message <= c.hwm THEN NULL ELSE c.last_error_at END,
    failures = CASE WHEN seen.top_message <= c.hwm THEN 0 ELSE c.failures END
FROM unnest(%(channel_ids)s::bigint[], %(top_messages)s::bigint[], %(in_dialogs)s::boolean[])
     AS seen(id, top_message, in_dialogs)
WHERE c.id = seen.id;
