-- A history run asked for this day of these channels.
UPDATE channels
SET history_requested = history_requested + tstzmultirange(tstzrange(%(start)s, %(end)s))
WHERE id = ANY(%(channel_ids)s);
