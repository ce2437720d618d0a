-- The mark only moves forward, in the same transaction as the rows it covers.
UPDATE channels
SET hwm = greatest(hwm, %(hwm)s), flood_wait_until = %(flood_wait_until)s, last_pulled_at = now()
WHERE id = %(channel_id)s;
