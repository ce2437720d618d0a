-- Search indexing: when a post outside albums was last written to Qdrant (album items are
-- tracked per album in media_groups.meta->'index').
ALTER TABLE posts ADD COLUMN indexed_at timestamptz;
CREATE INDEX posts_to_index_idx ON posts (channel_id, message_id)
    WHERE grouped_id IS NULL AND (indexed_at IS NULL OR deleted_at IS NOT NULL);
