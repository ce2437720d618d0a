-- Telegram refused the channel to this account: set aside until re-checked or re-enabled.
-- Its rows and mark stay; since when it is unavailable is kept across re-checks.
UPDATE channels
SET state = 'unavailable', state_reason = %(reason)s, checked_at = now(),
    state_since = CASE WHEN state = 'unavailable' THEN state_since ELSE now() END, updated_at = now()
WHERE id = %(channel_id)s;
