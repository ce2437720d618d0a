-- Deletions: an album whose every post was deleted on Telegram is tombstoned, not removed,
-- so its id is never reused; its S3 summaries, points and graph nodes are removed.
ALTER TABLE media_groups ADD COLUMN deleted_at timestamptz;

-- Deleted posts whose removal has not reached Qdrant and the graph yet (album items are
-- marked indexed with their album, so this covers them too).
CREATE INDEX posts_to_unindex_idx ON posts (channel_id, message_id)
    WHERE deleted_at IS NOT NULL AND indexed_at IS NOT NULL;

-- Failures of album steps. A poison album (one that fails every try of a task) is quarantined
-- for its current composition: later runs leave it alone until a person re-queues it
-- (`python -m include.album quarantine requeue`) or its composition changes.
CREATE TABLE album_failures (
    album_id         bigint PRIMARY KEY REFERENCES media_groups (id) ON DELETE CASCADE,
    content_hash     text NOT NULL,
    step             text NOT NULL,
    error            text NOT NULL,
    attempts         integer NOT NULL DEFAULT 1,
    first_failed_at  timestamptz NOT NULL DEFAULT now(),
    last_failed_at   timestamptz NOT NULL DEFAULT now(),
    quarantined_at   timestamptz
);
