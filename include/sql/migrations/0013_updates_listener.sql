-- The Telegram updates listener (an Airflow trigger, README "Freshness"): its lease, so that one
-- listener runs at a time whatever the number of triggerers, and the update state (Telethon's
-- pts) it keeps across restarts. ``channels.hinted_at``: when the listener last heard the channel post.
CREATE TABLE IF NOT EXISTS telegram_listeners (
    name         text PRIMARY KEY,       -- the listener's Telegram connection id
    holder       text NOT NULL,          -- who holds the lease (host, process, trigger)
    lease_until  timestamptz NOT NULL,   -- the holder renews it; after it, another may take over
    started_at   timestamptz NOT NULL,   -- when the holder took it
    update_state jsonb                   -- Telethon's update state: the account's and each channel's pts
);

ALTER TABLE channels ADD COLUMN IF NOT EXISTS hinted_at timestamptz;
