-- Messages the updates listener heard (README "Freshness"), as Telegram sent them (Telethon's TL
-- bytes): the pull its hint starts takes them from here instead of asking Telegram for them again.
-- Only above the channel's mark; forgotten when the mark passes them (writes.write_fetched), when
-- Telegram says they were deleted, and a day after they were heard. Trusted for KEPT_FRESH (file
-- references expire): older ones are asked for, as without the listener.
CREATE TABLE IF NOT EXISTS heard_messages (
    channel_id  bigint NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    message_id  bigint NOT NULL,
    message     bytea NOT NULL,
    heard_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (channel_id, message_id)
);
