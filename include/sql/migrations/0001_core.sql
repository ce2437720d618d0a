-- Core schema: tenants, channels, subscriptions, posts, media, albums.
-- Ids: channel_id/message_id are Telegram's integers, album_id = media_groups.id,
-- tenant_id is a slug (validated here and in code before use in keys and filters).

CREATE TABLE tenants (
    id          text PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9_-]{0,62}$'),
    name        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE channels (
    id                bigint PRIMARY KEY,            -- Telegram channel id (PeerChannel.channel_id)
    access_hash       bigint NOT NULL,               -- per account; with id it forms InputPeerChannel
    username          text,
    title             text NOT NULL,
    is_active         boolean NOT NULL DEFAULT true,
    hwm               bigint NOT NULL DEFAULT 0,     -- high-water mark: last stored message id
    flood_wait_until  timestamptz,                   -- Telegram asked us to wait until then
    last_pulled_at    timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX channels_username_key ON channels (lower(username)) WHERE username IS NOT NULL;

CREATE TABLE subscriptions (
    tenant_id   text   NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    channel_id  bigint NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, channel_id)
);
CREATE INDEX subscriptions_channel_idx ON subscriptions (channel_id);

-- Content-addressed media: one row per distinct byte string, stored at media/{sha[:2]}/{sha}.{ext}.
CREATE TABLE media_objects (
    sha256         text PRIMARY KEY CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    mime           text NOT NULL,
    size_bytes     bigint NOT NULL CHECK (size_bytes >= 0),
    s3_key         text NOT NULL,
    width          integer,
    height         integer,
    first_seen_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE posts (
    channel_id         bigint NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    message_id         bigint NOT NULL,
    grouped_id         bigint,
    text               text NOT NULL DEFAULT '',
    posted_at          timestamptz NOT NULL,
    edited_at          timestamptz,
    deleted_at         timestamptz,
    media_kind         text,            -- photo|video|gif|document|audio|voice|sticker|webpage|poll|geo|contact|other
    media_file_id      bigint,          -- Telegram photo.id / document.id: dedupes downloads
    media_mime         text,
    media_size         bigint,
    media_sha256       text REFERENCES media_objects (sha256),
    thumb_sha256       text REFERENCES media_objects (sha256),   -- video/GIF preview, used by vision
    media_skip_reason  text,            -- why the media is not stored (see ingest_skips for detail)
    ingested_at        timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (channel_id, message_id)
);
CREATE INDEX posts_grouped_idx ON posts (channel_id, grouped_id) WHERE grouped_id IS NOT NULL;
CREATE INDEX posts_media_file_idx ON posts (media_file_id) WHERE media_file_id IS NOT NULL;
CREATE INDEX posts_posted_at_idx ON posts (channel_id, posted_at);

-- One row per album (channel, grouped_id); id is the album_id used everywhere downstream.
CREATE TABLE media_groups (
    id            bigserial PRIMARY KEY,
    channel_id    bigint NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    grouped_id    bigint NOT NULL,
    album_kind    text NOT NULL CHECK (album_kind IN ('photo', 'video', 'document', 'mixed')),
    items_count   integer NOT NULL CHECK (items_count >= 0),
    caption_text  text,
    posted_at     timestamptz NOT NULL,
    content_hash  text NOT NULL,
    status        text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'assembled', 'partial')),
    meta          jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (channel_id, grouped_id)
);
CREATE INDEX media_groups_status_idx ON media_groups (status, updated_at);

CREATE TABLE media_group_items (
    group_id      bigint NOT NULL REFERENCES media_groups (id) ON DELETE CASCADE,
    position      integer NOT NULL CHECK (position >= 0),   -- 0-based, by message id
    message_id    bigint NOT NULL,
    media_kind    text,
    sha256        text REFERENCES media_objects (sha256),
    thumb_sha256  text REFERENCES media_objects (sha256),
    UNIQUE (group_id, position),
    UNIQUE (group_id, message_id)
);

-- What was not stored, or only partly, and why: never dropped silently.
CREATE TABLE ingest_skips (
    channel_id     bigint NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    ref            text NOT NULL,     -- message:<id> or archive:<file>:<line>
    reason         text NOT NULL,     -- service_message, media_too_large, download_failed, ...
    detail         text NOT NULL,
    first_seen_at  timestamptz NOT NULL DEFAULT now(),
    last_seen_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (channel_id, ref, reason)
);
