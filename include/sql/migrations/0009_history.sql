-- A channel's stored history as time: every message dated in `covered` is stored (or recorded
-- as a skip). Live pulls extend it from their first one on, history runs fill in the past, one
-- Telegram request per 100 messages: a day already inside it costs no request. Unbounded below
-- once a history page reached the channel's first message.
ALTER TABLE channels ADD COLUMN covered tstzmultirange NOT NULL DEFAULT '{}';
-- The days history runs were asked to import; what of it `covered` does not hold yet is the
-- import still to do (`channels list`).
ALTER TABLE channels ADD COLUMN history_requested tstzmultirange NOT NULL DEFAULT '{}';
-- Nothing is assumed covered for rows stored before this migration (earlier backfills may have
-- left gaps): a history run over those days fetches them again, and the rows stay one each.

-- Messages a history page brought from beyond the day it was asked for: kept (Telethon's TL
-- bytes) so that their own day costs no request, and stored as posts when that day is imported.
-- `covered` holds their time too: every message dated in it is a post or here.
CREATE TABLE history_staged (
    channel_id  bigint NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    message_id  bigint NOT NULL,
    posted_at   timestamptz NOT NULL,
    grouped_id  bigint,
    message     bytea NOT NULL,
    fetched_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (channel_id, message_id)
);
CREATE INDEX history_staged_day_idx ON history_staged (channel_id, posted_at);
CREATE INDEX history_staged_album_idx ON history_staged (channel_id, grouped_id) WHERE grouped_id IS NOT NULL;
