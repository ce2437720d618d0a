-- The version of a post the index holds: its updated_at when it was indexed. Compared for
-- equality, so an edit that commits while the post is being indexed (the refresh DAG and
-- telegram_albums at once) is indexed again by the next run, never lost to a timestamp race.
ALTER TABLE posts ADD COLUMN indexed_version timestamptz;
UPDATE posts SET indexed_version = updated_at WHERE indexed_at IS NOT NULL AND indexed_at >= updated_at;
