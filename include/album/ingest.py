"""Ingest one channel: pull, download, store, group albums, advance the mark (SPEC §4).

The order matters for correctness under retries:
1. pull messages (Telethon) and download their media, writing each object to S3 first;
2. then one Postgres transaction upserts posts, media rows, skips and albums and moves the
   high-water mark. A crash before the commit leaves only S3 objects, which the retry finds
   with HEAD and does not upload again; nothing in Postgres points at a missing object.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from psycopg.types.json import Jsonb
from telethon import TelegramClient, errors

from include.album import db, metrics
from include.album.grouping import GroupMember, compose_album, group_members
from include.album.models import DOWNLOADABLE_KINDS, Channel, IngestResult, Post, PostMedia, Skip, StoredMedia
from include.album.settings import Settings
from include.album.storage import MediaStore
from include.album.telegram import (
    PullWindow,
    close_client,
    download,
    file_extension,
    open_client,
    pull_channel,
    read_messages,
)

log = logging.getLogger(__name__)


class ChannelDeferred(Exception):
    """Telegram asked us to wait (FloodWait) during a backfill window: retry the task later."""


@dataclass
class Fetched:
    """What a pull brought: posts with their stored media, skips, and a FloodWait if one stopped it."""

    posts: list[tuple[Post, PostMedia]] = field(default_factory=list)
    skips: list[Skip] = field(default_factory=list)
    flood_wait_seconds: int | None = None


def load_channel(conn: Any, channel_id: int) -> Channel:
    row = db.fetch_one(conn, "channel_get", {"channel_id": channel_id})
    if row is None:
        raise LookupError(f"channel {channel_id} is not registered; add it with `python -m include.album channels add`")
    return Channel(**row)


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MB"


def _known_media(conn: Any, file_ids: list[int]) -> dict[int, PostMedia]:
    known = {}
    for row in db.fetch_all(conn, "known_media", {"file_ids": file_ids}):
        thumb = None
        if row["thumb_sha256"]:
            thumb = StoredMedia(row["thumb_sha256"], row["thumb_mime"], row["thumb_size"], row["thumb_s3_key"],
                                row["thumb_width"], row["thumb_height"])
        known[row["media_file_id"]] = PostMedia(
            media=StoredMedia(row["sha256"], row["mime"], row["size_bytes"], row["s3_key"], row["width"],
                              row["height"]),
            thumb=thumb,
        )
    return known


async def _fetch_media(client: TelegramClient, store: MediaStore, post: Post, message: Any,
                       settings: Settings) -> tuple[PostMedia, list[Skip]]:
    ref = post.media
    where = f"channel {post.channel_id} message {post.message_id}"
    if ref is None:
        return PostMedia(), []
    if not ref.downloadable:
        if ref.kind in DOWNLOADABLE_KINDS:  # e.g. an expired self-destructing photo
            reason, detail = "media_unavailable", f"{where}: the {ref.kind} is no longer available on Telegram"
        else:
            reason, detail = "unsupported_media", (f"{where}: {ref.kind} media is not stored (only photos, "
                                                   "videos, GIFs and documents are)")
        return PostMedia(skip_reason=reason), [
            Skip(post.channel_id, f"message:{post.message_id}", reason, detail + "; the post text is stored")]
    cap = settings.media_size_cap_bytes
    if ref.size is not None and ref.size > cap:
        detail = (f"{where}: {ref.kind} of {_megabytes(ref.size)} exceeds the {_megabytes(cap)} cap "
                  "(setting media_size_cap_bytes); the post is stored without its media")
        return PostMedia(skip_reason="media_too_large"), [
            Skip(post.channel_id, f"message:{post.message_id}", "media_too_large", detail)]
    try:
        data = await download(client, message)
    except errors.FloodWaitError:
        raise
    except errors.RPCError as exc:
        detail = f"{where}: download of {ref.kind} {ref.file_id} failed ({type(exc).__name__}: {exc})"
        return PostMedia(skip_reason="download_failed"), [
            Skip(post.channel_id, f"message:{post.message_id}", "download_failed", detail)]
    if not data:
        detail = f"{where}: Telegram returned no bytes for {ref.kind} {ref.file_id}"
        return PostMedia(skip_reason="download_failed"), [
            Skip(post.channel_id, f"message:{post.message_id}", "download_failed", detail)]
    if len(data) > cap:
        detail = f"{where}: {ref.kind} of {_megabytes(len(data))} exceeds the {_megabytes(cap)} cap"
        return PostMedia(skip_reason="media_too_large"), [
            Skip(post.channel_id, f"message:{post.message_id}", "media_too_large", detail)]
    result = PostMedia(media=store.put_media(data, mime=ref.mime or "application/octet-stream",
                                             extension=file_extension(ref.mime, ref.file_name),
                                             width=ref.width, height=ref.height))
    skips = []
    if ref.has_thumb and ref.kind in {"video", "gif"}:
        try:
            thumb = await download(client, message, thumb=True)
        except errors.FloodWaitError:
            raise
        except errors.RPCError as exc:
            thumb = None
            skips.append(Skip(post.channel_id, f"message:{post.message_id}", "thumbnail_failed",
                              f"{where}: preview of {ref.kind} {ref.file_id} failed ({type(exc).__name__}: {exc}); "
                              "the media itself is stored"))
        if thumb:
            result.thumb = store.put_media(thumb, mime="image/jpeg", extension="jpg")
    return result, skips


async def _fetch(conn: Any, client: TelegramClient, store: MediaStore, channel: Channel,
                 window: PullWindow | None, settings: Settings) -> Fetched:
    fetched = Fetched()
    await open_client(client)
    try:
        pull = await pull_channel(client, channel, window, settings.max_messages_per_pull)
        fetched.flood_wait_seconds = pull.flood_wait_seconds
        fetched.skips.extend(client.transport_problems(channel.id))
        await fetch_media(conn, client, store, channel.id, pull.messages, settings, fetched)
    finally:
        await close_client(client)
    return fetched


async def fetch_media(conn: Any, client: TelegramClient, store: MediaStore, channel_id: int, messages: list[Any],
                      settings: Settings, fetched: Fetched) -> None:
    """Read ``messages`` into ``fetched``: posts with their media stored in S3, and skips.

    Media already stored for a Telegram file id is not downloaded again. A FloodWait stops
    here: what came before it is kept and ``fetched.flood_wait_seconds`` is set.
    """
    posts, skips = read_messages(channel_id, messages)
    fetched.skips.extend(skips)
    file_ids = sorted({p.media.file_id for p, _ in posts if p.media and p.media.file_id is not None})
    known = _known_media(conn, file_ids) if file_ids else {}
    for post, message in posts:
        file_id = post.media.file_id if post.media else None
        if file_id in known:
            fetched.posts.append((post, known[file_id]))
            continue
        try:
            media, media_skips = await _fetch_media(client, store, post, message, settings)
        except errors.FloodWaitError as exc:
            # Keep what came before this message; the rest is pulled again later.
            fetched.flood_wait_seconds = exc.seconds
            break
        if media.media is not None and file_id is not None:
            known[file_id] = media
        fetched.posts.append((post, media))
        fetched.skips.extend(media_skips)


def _post_row(post: Post, media: PostMedia) -> dict:
    ref = post.media
    return {
        "channel_id": post.channel_id, "message_id": post.message_id, "grouped_id": post.grouped_id,
        "text": post.text, "posted_at": post.posted_at, "edited_at": post.edited_at,
        "media_kind": ref.kind if ref else None, "media_file_id": ref.file_id if ref else None,
        "media_mime": ref.mime if ref else None, "media_size": ref.size if ref else None,
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


def regroup_albums(conn: Any, channel_id: int, grouped_ids: list[int]) -> tuple[list[int], list[int]]:
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


def write_fetched(conn: Any, channel_id: int, fetched: Fetched, *, hwm: int | None,
                  flood_wait_until: datetime | None = None,
                  deleted: Sequence[int] = ()) -> tuple[list[int], list[int]]:
    """One transaction: media rows, posts, skips, tombstones of ``deleted`` message ids, albums, mark.

    ``hwm`` None leaves the channel's mark and FloodWait state alone (refreshes).
    Returns the album ids new or changed, and those tombstoned.
    """
    with conn.transaction():
        db.execute(conn, "channel_lock", {"channel_id": channel_id})
        db.execute_many(conn, "media_object_upsert", _media_rows(fetched.posts))
        db.execute_many(conn, "post_upsert", (_post_row(p, m) for p, m in fetched.posts))
        db.execute_many(conn, "skip_record", ({"channel_id": s.channel_id, "ref": s.ref, "reason": s.reason,
                                               "detail": s.detail} for s in fetched.skips))
        gone = db.fetch_all(conn, "posts_tombstone", {"channel_id": channel_id,
                                                      "message_ids": list(deleted)}) if deleted else []
        grouped_ids = {p.grouped_id for p, _ in fetched.posts if p.grouped_id is not None}
        grouped_ids.update(r["grouped_id"] for r in gone if r["grouped_id"] is not None)
        changed, tombstoned = regroup_albums(conn, channel_id, sorted(grouped_ids))
        if hwm is not None:
            db.execute(conn, "channel_mark_pulled", {"channel_id": channel_id, "hwm": hwm,
                                                     "flood_wait_until": flood_wait_until})
    return changed, tombstoned


def _emit(result: IngestResult) -> None:
    metrics.incr("telegram_messages_pulled_total", result.messages)
    metrics.incr("albums_parsed_total", len(result.album_ids), label="ok")
    metrics.incr("telegram_media_stored_bytes_total", result.media_bytes)
    if result.flood_wait_seconds:
        metrics.incr("telegram_flood_waits_total")
    for skip in result.skips:
        metrics.incr("telegram_ingest_skips_total", label=skip.reason)


def ingest_channel(conn: Any, store: MediaStore, client: TelegramClient, channel_id: int, settings: Settings,
                   window: PullWindow | None = None, now: datetime | None = None) -> IngestResult:
    """Pull ``channel_id`` above its mark (or over ``window``) and store everything, atomically."""
    now = now or datetime.now(UTC)
    channel = load_channel(conn, channel_id)
    result = IngestResult(channel_id=channel_id, hwm=channel.hwm)
    if channel.flood_wait_until and channel.flood_wait_until > now:
        message = (f"channel {channel.label} ({channel.id}) is in a Telegram FloodWait until "
                   f"{channel.flood_wait_until.isoformat()}; skipped this run, it catches up afterwards")
        if window is not None:
            raise ChannelDeferred(message)
        log.warning(message)
        result.deferred_until = channel.flood_wait_until
        return result

    fetched = asyncio.run(_fetch(conn, client, store, channel, window, settings))

    flood_until = None
    if fetched.flood_wait_seconds:
        flood_until = now + timedelta(seconds=fetched.flood_wait_seconds)
        result.flood_wait_seconds = fetched.flood_wait_seconds
        result.deferred_until = flood_until
    message_ids = [p.message_id for p, _ in fetched.posts] + [
        int(s.ref.split(":")[1]) for s in fetched.skips if s.ref.startswith("message:")]
    new_hwm = max([channel.hwm, *message_ids]) if window is None else channel.hwm

    result.album_ids, _ = write_fetched(conn, channel_id, fetched, hwm=new_hwm, flood_wait_until=flood_until)

    result.messages = len(fetched.posts)
    result.skips = fetched.skips
    result.hwm = max(channel.hwm, new_hwm)
    stored = {m.sha256: m.size for _, pm in fetched.posts for m in (pm.media, pm.thumb) if m is not None}
    result.media_stored, result.media_bytes = len(stored), sum(stored.values())
    _emit(result)
    for skip in fetched.skips:
        log.warning("skipped %s: %s", skip.reason, skip.detail)
    log.info("channel %s: %d posts, %d media objects (%d bytes), %d skips, %d albums new/changed, mark %d",
             channel.label, result.messages, result.media_stored, result.media_bytes, len(result.skips),
             len(result.album_ids), result.hwm)
    if flood_until is not None:
        message = (f"channel {channel.label} ({channel.id}): Telegram FloodWait of {fetched.flood_wait_seconds}s; "
                   f"stored what arrived before it, deferred until {flood_until.isoformat()}")
        if window is not None:
            raise ChannelDeferred(message)
        log.warning(message)
    return result
