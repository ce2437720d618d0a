-- Vision results cached per image content and provider version: an image is analysed once,
-- whichever post, album or run it appears in. A terminal skip (corrupt file, decompression
-- bomb) is cached like a result so it is not retried either.
CREATE TABLE vision_results (
    sha256        text NOT NULL REFERENCES media_objects (sha256),
    provider_key  text NOT NULL,                 -- provider:model:schema, e.g. local:heuristic-1+tesseract:v1
    result        jsonb,                         -- item schema v1 (providers/vision.py)
    skip_reason   text,
    skip_detail   text,
    duration_ms   integer NOT NULL DEFAULT 0,
    analyzed_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (sha256, provider_key),
    CHECK ((result IS NULL) <> (skip_reason IS NULL))
);

-- The summary computed for an album's current composition, waiting to be published
-- (S3 objects per tenant + media_groups.meta->'enrichment').
CREATE TABLE album_summaries (
    album_id      bigint PRIMARY KEY REFERENCES media_groups (id) ON DELETE CASCADE,
    content_hash  text NOT NULL,
    provider_key  text NOT NULL,
    status        text NOT NULL CHECK (status IN ('assembled', 'partial')),
    summary       jsonb NOT NULL,
    computed_at   timestamptz NOT NULL DEFAULT now()
);

-- When the album's composition last changed: the clock of the partial-assembly timeout.
ALTER TABLE media_groups ADD COLUMN composed_at timestamptz NOT NULL DEFAULT now();
