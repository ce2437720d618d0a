"""What a pull writes, in one transaction per channel: media rows, posts, skips, media to fetch
again, tombstones, albums recomposed from all their posts, the time covered, and the mark.

The order around it matters for correctness under retries: media go to S3 first
(``downloads``), then this transaction; a crash before the commit leaves only S3 objects, which
the retry finds with HEAD and does not upload again, and nothing in Postgres points at a
missing object. The per-channel lock makes two writers of a channel (the live and the refresh
or history DAGs) wait for each other.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import psycopg
from psycopg.types.json import Jsonb

from include.album.domain.grouping import GroupMember, compose_album, group_members
from include.album.domain.models import MEDIA_GIVEN_UP_SKIPS, PREVIEW_GIVEN_UP_SKIP, MediaPart, Post, PostMedia
from include.album.steps.downloads import Fetched
from include.album.stores import db

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Cover:
    """Time a pull read whole: every message dated in it is among what it brought (None: unbounded;
    ``bounds`` as Postgres writes them, ``[)`` or ``()``)."""

    start: datetime | None
    end: datetime | None
    bounds: str = "[)"


def write_fetched(conn: psycopg.Connection, channel_id: int, fetched: Fetched, *, hwm: int | None,
                  flood_wait_until: datetime | None = None, deleted: Sequence[int] = (),
                  now: datetime | None = None, cover: Cover | None = None) -> tuple[list[int], list[int]]:
    """One transaction: media rows, posts, skips, media to fetch again, tombstones of ``deleted``
    message ids, albums, the time covered, mark (and what the listener heard below it forgotten).

    ``hwm`` None leaves the channel's mark and FloodWait state alone (refreshes, history).
    ``cover`` adds to ``channels.covered`` (the time the channel's stored history holds whole).
    Returns the album ids new or changed, and those tombstoned.
    """
    with conn.transaction():
        db.execute(conn, "channel_lock", {"channel_id": channel_id})
        db.execute_many(conn, "media_object_upsert", _media_rows(fetched.posts))
        db.execute_many(conn, "post_upsert", (_post_row(p, m) for p, m in fetched.posts))
        db.execute_many(conn, "skip_record", ({"channel_id": s.channel_id, "ref": s.ref, "reason": s.reason,
                                               "detail": s.detail} for s in fetched.skips))
        _write_retries(conn, channel_id, fetched, now or datetime.now(UTC))
        gone = db.fetch_all(conn, "posts_tombstone", {"channel_id": channel_id,
                                                      "message_ids": list(deleted)}) if deleted else []
        grouped_ids = {p.grouped_id for p, _ in fetched.posts if p.grouped_id is not None}
        grouped_ids.update(r["grouped_id"] for r in gone if r["grouped_id"] is not None)
        changed, tombstoned = regroup_albums(conn, channel_id, sorted(grouped_ids))
        if cover is not None and (cover.start is None or cover.end is None or cover.start < cover.end):
            db.execute(conn, "channel_cover", {"channel_id": channel_id, "start": cover.start, "end": cover.end,
                                               "bounds": cover.bounds})
        if hwm is not None:
            db.execute(conn, "channel_mark_pulled", {"channel_id": channel_id, "hwm": hwm,
                                                     "flood_wait_until": flood_wait_until})
            db.execute(conn, "heard_pulled", {"channel_id": channel_id})
    return changed, tombstoned


def regroup_albums(conn: psycopg.Connection, channel_id: int, grouped_ids: list[int]) -> tuple[list[int], list[int]]:
    """Recompose the given albums from all their live posts.

    Returns the ids of albums new or changed, and of albums tombstoned because every one of
    their posts was deleted.
    """
    if not grouped_ids:
        return [], []
    rows = db.fetch_all(conn, "album_members", {"channel_id": channel_id, "grouped_ids": grouped_ids})
    groups = group_members(
        (r["grouped_id"], GroupMember(r["message_id"], r["text"], r["posted_at"], r["media_kind"],
                                      r["media_sha256"], r["thumb_sha256"]))
        for r in rows
    )
    albums = [compose_album(channel_id, grouped_id, groups[grouped_id]) for grouped_id in sorted(groups)]
    # One pipelined batch per statement, not three round trips per album (a backfill brings thousands).
    upserted = db.fetch_many(conn, "album_upsert", ({
        "channel_id": channel_id, "grouped_id": a.grouped_id, "album_kind": a.album_kind,
        "items_count": a.items_count, "caption_text": a.caption_text, "posted_at": a.posted_at,
        "content_hash": a.content_hash, "meta": Jsonb({"over_limit": a.over_limit})} for a in albums))
    by_grouped_id = {a.grouped_id: a for a in albums}
    changed = [row["id"] for row in upserted]  # unchanged compositions return no row: nothing to redo
    if changed:
        db.execute(conn, "album_items_clear", {"album_ids": changed})
    db.execute_many(conn, "album_item_insert", (
        {"album_id": row["id"], "position": i.position, "message_id": i.message_id, "media_kind": i.media_kind,
         "sha256": i.sha256, "thumb_sha256": i.thumb_sha256}
        for row in upserted for i in by_grouped_id[row["grouped_id"]].items))
    for row in upserted:
        log.info("album %s (channel %s, grouped_id %s): %s, %d items", row["id"], channel_id, row["grouped_id"],
                 "new" if row["previous_hash"] is None else "changed", by_grouped_id[row["grouped_id"]].items_count)
    emptied = sorted(set(grouped_ids) - set(groups))
    tombstoned = [r["id"] for r in db.fetch_all(conn, "album_tombstone", {"channel_id": channel_id,
                                                                        "grouped_ids": emptied})] if emptied else []
    for album_id in tombstoned:
        log.info("album %s (channel %s): every post was deleted; tombstoned", album_id, channel_id)
    return changed, tombstoned


def _write_retries(conn: psycopg.Connection, channel_id: int, fetched: Fetched, now: datetime) -> None:
    """Media to fetch again recorded; what is stored, or given up, no longer to fetch again."""
    db.execute_many(conn, "media_retry_record", ({
        "channel_id": r.channel_id, "message_id": r.message_id, "part": str(r.part), "tried": int(r.tried),
        "error": r.error, "retry_after": r.retry_after, "now": now} for r in fetched.retries))
    retrying = {(r.message_id, r.part) for r in fetched.retries}
    settled = {MediaPart.MEDIA: [], MediaPart.PREVIEW: []}
    for post, media in fetched.posts:
        if post.media is None:
            continue
        if (post.message_id, MediaPart.MEDIA) not in retrying:
            settled[MediaPart.MEDIA].append(post.message_id)
        if media.media is not None and (post.message_id, MediaPart.PREVIEW) not in retrying:
            settled[MediaPart.PREVIEW].append(post.message_id)
    for part, message_ids in settled.items():
        if message_ids:
            db.execute(conn, "media_retries_clear", {"channel_id": channel_id, "part": str(part),
                                                     "message_ids": message_ids})
    stored = {MediaPart.MEDIA: [p.message_id for p, m in fetched.posts if m.media is not None],
              MediaPart.PREVIEW: [p.message_id for p, m in fetched.posts if m.thumb is not None]}
    given_up = {MediaPart.MEDIA: list(MEDIA_GIVEN_UP_SKIPS), MediaPart.PREVIEW: [PREVIEW_GIVEN_UP_SKIP]}
    for part, message_ids in stored.items():  # stored after all: the skips that said otherwise are done
        if message_ids:
            db.execute(conn, "skips_refetched", {"channel_id": channel_id, "message_ids": message_ids,
                                                 "reasons": given_up[part]})


def _post_row(post: Post, media: PostMedia) -> dict:
    ref = post.media
    return {
        "channel_id": post.channel_id, "message_id": post.message_id, "grouped_id": post.grouped_id,
        "text": post.text, "posted_at": post.posted_at, "edited_at": post.edited_at,
        "media_kind": ref.kind if ref else None, "media_file_id": ref.file_id if ref else None,
        "media_mime": ref.mime if ref else None, "media_size": ref.size if ref else None,
        "media_file_name": ref.file_name if ref else None,
        "media_sha256": media.media.sha256 if media.media else None,
        "thumb_sha256": media.thumb.sha256 if media.thumb else None,
        "media_skip_reason": media.skip_reason,
    }


def _media_rows(posts: list[tuple[Post, PostMedia]]) -> list[dict]:
    objects = {}
    for _, media in posts:
        for stored in (media.media, media.thumb):
            if stored is not None:
                objects[stored.sha256] = {"sha256": stored.sha256, "mime": stored.mime, "size": stored.size,
                                          "s3_key": stored.s3_key, "width": stored.width, "height": stored.height}
    return [objects[sha] for sha in sorted(objects)]

