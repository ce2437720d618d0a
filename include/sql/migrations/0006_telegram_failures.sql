-- A channel Telegram refuses to this account (made private, banned, deleted) is set aside:
-- state 'unavailable' with Telegram's error string and since when. Scheduled runs pass it over
-- until unavailable_recheck_hours after its last check (checked_at), or until
-- `python -m include.album channels enable`; its rows stay.
ALTER TABLE channels ADD COLUMN state text NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'unavailable'));
ALTER TABLE channels ADD COLUMN state_reason text;
ALTER TABLE channels ADD COLUMN state_since timestamptz;
ALTER TABLE channels ADD COLUMN checked_at timestamptz;
-- A new username or title not written to the graph's Channel node yet.
ALTER TABLE channels ADD COLUMN renamed_at timestamptz;

-- Posts whose media a later pull fetches again: a photo whose file reference kept expiring,
-- for a week after it was first recorded (then the skip stands and its album stays partial).
CREATE INDEX posts_media_refetch_idx ON posts (channel_id, message_id)
    WHERE media_skip_reason = 'file_reference_expired' AND deleted_at IS NULL;

CREATE FUNCTION media_to_refetch(channel bigint) RETURNS TABLE (message_id bigint)
LANGUAGE sql STABLE AS $$
    SELECT p.message_id
    FROM posts p
    JOIN ingest_skips s ON s.channel_id = p.channel_id AND s.ref = 'message:' || p.message_id
                       AND s.reason = p.media_skip_reason
    WHERE p.channel_id = channel AND p.media_skip_reason = 'file_reference_expired' AND p.deleted_at IS NULL
      AND s.first_seen_at > now() - interval '7 days'
    ORDER BY p.message_id
    LIMIT 100
$$;
