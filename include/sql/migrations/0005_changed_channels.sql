-- What Telegram last said a channel's newest message is, and how it was asked: a scheduled run
-- pulls only the channels whose newest message is above their mark (hwm).
ALTER TABLE channels ADD COLUMN top_message bigint;        -- the newest message id Telegram reported
ALTER TABLE channels ADD COLUMN top_checked_at timestamptz;
ALTER TABLE channels ADD COLUMN in_dialogs boolean;        -- false: not in the account's dialogs, probed alone

-- The last pull that failed for the channel's own sake (not an outage of ours), and how many
-- pulls in a row failed; a pull that succeeds clears both. The next run tries again.
ALTER TABLE channels ADD COLUMN last_error text;
ALTER TABLE channels ADD COLUMN last_error_at timestamptz;
ALTER TABLE channels ADD COLUMN failures integer NOT NULL DEFAULT 0;
