-- Media left to fetch again. A download that met a wait (FLOOD_WAIT, FLOOD_PREMIUM_WAIT, ...) or
-- an error that may pass (5xx, timeouts, an expired file reference, anything unclassified) is not
-- a skip: the post is stored without it, and a later run fetches the message again by id and
-- retries, not before retry_after. A wait is no try; after media_retry_tries failed tries over at
-- least media_retry_hours it becomes a terminal skip (posts.media_skip_reason, ingest_skips).
-- The row goes when the media (or the video's preview) is stored, or given up.
CREATE TABLE media_retries (
    channel_id       bigint NOT NULL,
    message_id       bigint NOT NULL,
    part             text NOT NULL CHECK (part IN ('media', 'preview')),
    tries            integer NOT NULL DEFAULT 0 CHECK (tries >= 0),  -- failed tries (waits are none)
    last_error       text NOT NULL,                                   -- Telegram's error and what it said
    first_failed_at  timestamptz NOT NULL DEFAULT now(),
    last_failed_at   timestamptz NOT NULL DEFAULT now(),
    retry_after      timestamptz NOT NULL,                            -- a wait's end, or the backoff
    PRIMARY KEY (channel_id, message_id, part),
    FOREIGN KEY (channel_id, message_id) REFERENCES posts (channel_id, message_id) ON DELETE CASCADE
);
CREATE INDEX media_retries_due_idx ON media_retries (channel_id, retry_after);

-- What the file-reference rule left behind becomes a retry, tried once already.
INSERT INTO media_retries (channel_id, message_id, part, tries, last_error, first_failed_at, last_failed_at,
                           retry_after)
SELECT p.channel_id, p.message_id, 'media', 1, 'FILE_REFERENCE_EXPIRED', s.first_seen_at, s.last_seen_at, now()
FROM posts p
JOIN ingest_skips s ON s.channel_id = p.channel_id AND s.ref = 'message:' || p.message_id
                   AND s.reason = 'file_reference_expired'
WHERE p.media_skip_reason = 'file_reference_expired' AND p.deleted_at IS NULL;
UPDATE posts SET media_skip_reason = NULL WHERE media_skip_reason = 'file_reference_expired';
DELETE FROM ingest_skips WHERE reason = 'file_reference_expired';
DROP FUNCTION media_to_refetch(bigint);
DROP INDEX posts_media_refetch_idx;

-- Waits Telegram gave the session, by the request they concern (upload.GetFileRequest for
-- downloads, messages.GetPeerDialogsRequest for the change check, ...): every run of both DAGs
-- seeds its client with them, so none asks again before they end. A channel's own wait stays in
-- channels.flood_wait_until.
CREATE TABLE telegram_waits (
    conn_id   text NOT NULL,         -- the Airflow connection of the session
    request   text NOT NULL,         -- module.RequestName, as telethon.tl.functions names it
    until     timestamptz NOT NULL,  -- when the wait ends: given_at + the seconds Telegram said
    error     text NOT NULL,         -- Telegram's error string, e.g. FLOOD_PREMIUM_WAIT_90
    given_at  timestamptz NOT NULL,
    PRIMARY KEY (conn_id, request)
);
