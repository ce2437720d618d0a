-- What the listener heard: each channel's newest message id, kept before the event that wakes
-- the DAG is sent, so that an event Airflow loses or merges loses no hint. Never lowers what is
-- known (a late or repeated hint changes nothing).
UPDATE channels c
SET top_message = GREATEST(COALESCE(c.top_message, 0), heard.newest), hinted_at = now()
FROM unnest(%(channel_ids)s::bigint[], %(newest)s::bigint[]) AS heard(id, newest)
WHERE c.id = heard.id;
