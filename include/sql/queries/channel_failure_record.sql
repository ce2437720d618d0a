-- A pull that failed for the channel's own sake: recorded, and tried again by the next run.
UPDATE channels
SET last_error = %(error)s, last_error_at = now(), failures = failures + 1
WHERE id = %(channel_id)s
RETURNING failures;
