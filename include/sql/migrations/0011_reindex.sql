-- Reindex passes (steps/reindex.py): one row per target collection and scope ('' = every channel,
-- else a tenant id). A pass resumes after its last finished batch; the pass after a finished one
-- rewrites only what the DAG indexed since the previous began (the switch-over's catch-up).
CREATE TABLE reindex_passes (
    collection text NOT NULL,
    scope text NOT NULL,
    started_at timestamptz NOT NULL,
    since timestamptz,                          -- NULL: a full pass
    albums_after bigint NOT NULL DEFAULT 0,     -- the last album id written
    posts_after_channel bigint NOT NULL DEFAULT 0,
    posts_after_message bigint NOT NULL DEFAULT 0,
    albums_written integer NOT NULL DEFAULT 0,
    posts_written integer NOT NULL DEFAULT 0,
    finished_at timestamptz,
    PRIMARY KEY (collection, scope)
);
