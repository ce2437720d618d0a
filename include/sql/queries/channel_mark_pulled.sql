-- The mark only moves forward, in the same transaction as the rows it covers. A pull that
-- got this far clears the channel's last failure.
UPDATE channels
SET hwm = greatest(hwm, %(hwm)s), flood_wait_until = %(flood_wait_until)s, last_pulled_at = now(),
    last_error = NULL, last_error_at = NULL, failures = 0
WHERE id = %(channel_id)s;
