-- Channels Telegram answers for again (a re-check that worked), or re-enabled by a person.
UPDATE channels
SET state = 'active', state_reason = NULL, state_since = NULL, checked_at = NULL, updated_at = now()
WHERE id = ANY(%(channel_ids)s) AND state <> 'active';
