-- An album's life as columns (domain/lifecycle.py), instead of paths under meta compared as
-- strings: which composition its published enrichment is of, that enrichment's version, and
-- which version the search index holds. status stays the album's state (open|assembled|partial);
-- meta->'enrichment' stays the published summary, meta->'index' what was indexed (points, text).
ALTER TABLE media_groups ADD COLUMN enriched_hash text;            -- the content_hash it was enriched for
ALTER TABLE media_groups ADD COLUMN enriched_at timestamptz;       -- that enrichment's version (assembled_at)
ALTER TABLE media_groups ADD COLUMN indexed_version timestamptz;   -- the enriched_at the index holds
ALTER TABLE media_groups ADD COLUMN indexed_at timestamptz;        -- when it was indexed

UPDATE media_groups
SET enriched_hash = meta -> 'enrichment' ->> 'content_hash',
    enriched_at = (meta -> 'enrichment' ->> 'assembled_at')::timestamptz,
    indexed_version = (meta -> 'index' ->> 'enrichment_assembled_at')::timestamptz,
    indexed_at = (meta -> 'index' ->> 'indexed_at')::timestamptz
WHERE meta ? 'enrichment' OR meta ? 'index';
UPDATE media_groups SET meta = meta #- '{index,enrichment_assembled_at}' WHERE meta ? 'index';

-- Which run touched an album, written by the steps as they do (the albums view links them).
CREATE TABLE album_runs (
    album_id   bigint NOT NULL REFERENCES media_groups (id) ON DELETE CASCADE,
    dag_id     text NOT NULL,
    run_id     text NOT NULL,
    task_id    text NOT NULL,
    map_index  integer NOT NULL,
    outcome    text NOT NULL,
    at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (album_id, dag_id, run_id, task_id)
);
CREATE INDEX album_runs_recent_idx ON album_runs (album_id, at DESC);
