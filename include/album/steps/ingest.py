"""Ingest channels: find which changed, pull, download, store, group albums, advance the marks.

A scheduled window first asks Telegram which channels have messages above their mark
(``find_changed_channels``: a few requests for many channels); only those are pulled, several per
task over one Telegram connection (``ingest_channels``). Per channel, the order matters for
correctness under retries:
1. pull messages (Telethon) and download their media, writing each object to S3 first
   (``downloads.fetch_media``);
2. then one Postgres transaction upserts posts, media rows, skips, media to fetch again and
   albums, and moves the high-water mark. A crash before the commit leaves only S3 objects,
   which the retry finds with HEAD and does not upload again; nothing in Postgres points at a
   missing object.

A channel that fails for its own sake (its data, a Telegram error for it) is recorded on its
row (``channels.last_error``) and the others go on; the next run pulls it again from its mark.
Telegram's answers are sorted by what they mean (``source.failures``): a wait defers what it
concerns until it ends, counted from when it was given (a channel's pull: the channel; the
change check or downloads: the whole session, for every run of both DAGs, ``steps.session``);
a channel the account lost is set aside (``channels.state``) until re-checked; a session
Telegram refuses fails the task without retries (``SessionUnusable``); media that could not be
fetched is fetched again by later runs, or given up with its reason (``downloads``); 5xx answers
are retried by Telethon, then the channel waits for the next run (two such channels in a row:
the unit's rest waits too, unasked). An outage of our own stores fails the task, which retries.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import psycopg
from psycopg.types.json import Jsonb

from include.album.domain.grouping import GroupMember, compose_album, group_members
from include.album.domain.models import (
    MEDIA_GIVEN_UP_SKIPS,
    PREVIEW_GIVEN_UP_SKIP,
    Channel,
    IngestResult,
    MediaPart,
    Post,
    PostMedia,
)
from include.album.domain.settings import Settings
from include.album.source.changes import NewestMessages, newest_message_ids
from include.album.source.client import CHANGE_CHECK, REQUEST_RETRIES, PipelineClient, input_peer
from include.album.source.failures import (
    Meaning,
    SessionUnusable,
    Wait,
    error_name,
    is_server_error,
    meaning,
)
from include.album.source.pull import Pull, PullWindow, pull_channel
from include.album.steps import metrics
from include.album.steps.downloads import Fetched, fetch_media
from include.album.steps.quarantine import is_transient
from include.album.steps.session import stored_waits, telegram_session
from include.album.stores import db
from include.album.stores.media import MediaStore

log = logging.getLogger(__name__)
T = TypeVar("T")


class ChannelDeferred(Exception):
    """A backfill window could not be pulled whole (a wait, a failing channel): retry the task later."""


class ChannelUnavailable(Exception):
    """Telegram refuses the channel to this account; it is set aside (``mark_unavailable``)."""

    def __init__(self, channel: Channel, reason: str):
        super().__init__(f"channel {channel.label} ({channel.id}) is unavailable ({reason})")
        self.reason = reason


# Telegram failing this many channels in a row (5xx, timeouts, after Telethon's retries): the
# unit's remaining channels are left for the next run without asking.
TELEGRAM_DOWN_STREAK = 2


def load_channel(conn: psycopg.Connection, channel_id: int, now: datetime | None = None) -> Channel:
    row = db.fetch_one(conn, "channel_get", {"channel_id": channel_id, "now": now or datetime.now(UTC)})
    if row is None:
        raise LookupError(f"channel {channel_id} is not registered; add it with `python -m include.album channels add`")
    return Channel(**row)


def load_channels(conn: psycopg.Connection, channel_ids: Sequence[int], now: datetime | None = None) -> list[Channel]:
    """The channels of ``channel_ids`` in that order (one query for a whole unit)."""
    channels = [Channel(**row) for row in db.fetch_all(conn, "channels_get", {
        "channel_ids": list(channel_ids), "now": now or datetime.now(UTC)})]
    missing = sorted(set(channel_ids) - {c.id for c in channels})
    if missing:
        raise LookupError(f"channels {missing} are not registered; add them with "
                          "`python -m include.album channels add`")
    return channels


def _deferred(channel: Channel, now: datetime) -> bool:
    return channel.flood_wait_until is not None and channel.flood_wait_until > now


def channels_to_pull(conn: psycopg.Connection, settings: Settings, now: datetime | None = None) -> list[Channel]:
    """Subscribed channels, in id order; an unavailable one only once its re-check is due."""
    return [Channel(**row) for row in db.fetch_all(conn, "channels_to_pull", {
        "recheck_hours": settings.unavailable_recheck_hours, "now": now or datetime.now(UTC)})]


def find_changed_channels(conn: psycopg.Connection, client: PipelineClient | None, settings: Settings,
                          window: PullWindow | None = None, now: datetime | None = None) -> list[int]:
    """The subscribed channels this run pulls, in id order.

    A backfill run (``window``) pulls its data interval from every channel. Otherwise Telegram
    is asked for each channel's newest message id (``changes.newest_message_ids``: one request
    per 100 channels in the account's dialogs, one per channel outside them), the answers are
    stored (``channels.top_message``, and a new username or title), and only channels with
    something above their mark, or media due to be fetched again, are pulled. Channels in a
    wait are passed over until it ends. A wait given while asking is the session's: it is
    stored, and until it ends no run asks again (those runs pull what earlier answers said is
    above a mark, and media due). Telegram failing while asking leaves the channels not asked
    yet for the next run; a channel Telegram refuses is set aside.
    """
    now = now or datetime.now(UTC)
    channels = channels_to_pull(conn, settings, now)
    if window is not None:
        for channel in channels:
            if channel.state != "active":
                log.warning("channel %s (%s) is set aside as unavailable; this backfill window leaves it out",
                            channel.label, channel.id)
        return [c.id for c in channels if c.state == "active"]
    waiting = [c for c in channels if _deferred(c, now)]
    for channel in waiting:
        log.info("channel %s is in a Telegram FloodWait until %s; not asked this run", channel.label,
                 channel.flood_wait_until.isoformat())
    due = [c for c in channels if not _deferred(c, now)]
    check_wait = stored_waits(conn, client.conn_id, now).get(CHANGE_CHECK) if due else None
    if check_wait is not None:
        changed = [c.id for c in due if c.state == "active" and (_above_mark(c) or c.media_pending)]
        log.warning("Telegram asked this session to wait (%s) until %s before asking which channels changed: not "
                    "asked this run (no request); pulling the %d channels earlier answers put above their mark "
                    "or with media due", check_wait.error, check_wait.until.isoformat(timespec="seconds"),
                    len(changed))
        return changed
    found = asyncio.run(_newest(conn, client, due, now))
    observed = sorted(found.newest)
    db.execute(conn, "channels_observe", {"channel_ids": observed, "top_messages": [found.newest[i] for i in observed],
                                          "in_dialogs": [found.in_dialogs.get(i, True) for i in observed]})
    follow_renames(conn, due, found)
    mark_available(conn, [c for c in due if c.state == "unavailable" and c.id in found.newest])
    for channel in due:
        if channel.id in found.failed:
            channel_failed(conn, client, channel, found.failed[channel.id], "asking for its newest message")
    not_asked = len(due) - len(found.newest) - len(found.failed)
    if found.wait is not None:
        log.warning("Telegram asked for a wait of %ss (%s) while asking which channels changed; %d channels not "
                    "asked are left until it ends, %s", found.wait.seconds, found.wait.error, not_asked,
                    found.wait.until.isoformat(timespec="seconds"))
    if found.telegram_error is not None:
        metrics.incr("telegram_server_errors_total", label=error_name(found.telegram_error).lower())
        log.warning("Telegram kept failing (%s) after %d retries while asking which channels changed; %d channels "
                    "not asked are left for the next run", error_name(found.telegram_error), REQUEST_RETRIES, not_asked)
    changed = [c.id for c in due if found.newest.get(c.id, 0) > c.hwm or (c.media_pending and c.id in found.newest)]
    outside = sum(1 for c in due if found.in_dialogs.get(c.id) is False)
    log.info("%d subscribed channels: %d changed, %d unchanged, %d deferred, %d failed (%d read outside the "
             "account's dialogs)", len(channels), len(changed), len(found.newest) - len(changed), len(waiting),
             len(found.failed), outside)
    return changed


def _above_mark(channel: Channel) -> bool:
    return channel.top_message is not None and channel.top_message > channel.hwm


async def _newest(conn: psycopg.Connection, client: PipelineClient, channels: Sequence[Channel],
                  now: datetime) -> NewestMessages:
    if not channels:
        return NewestMessages()
    async with telegram_session(conn, client, now):
        try:
            await client.open()
            found = await newest_message_ids(client, channels)
            if found.wait is not None:  # whichever of its requests met it, the change check waits
                client.keep_wait(CHANGE_CHECK, found.wait)
            return found
        except SessionUnusable:
            raise
        except Exception as exc:
            if meaning(exc) is Meaning.SESSION_UNUSABLE:
                raise SessionUnusable(client.conn_id, exc) from exc
            raise


def follow_renames(conn: psycopg.Connection, channels: Sequence[Channel], found: NewestMessages) -> None:
    """Store the username and title Telegram now shows for each channel; the graph follows
    (``indexing.sync_renamed_channels``), and so do the UI's labels, which read the table."""
    for channel in channels:
        username, title = found.labels.get(channel.id, (channel.username, channel.title))
        if (username, title) == (channel.username, channel.title):
            continue
        with conn.transaction():
            if username:  # a username moves between channels: whoever held it before has let it go
                db.execute(conn, "channel_username_release", {"channel_id": channel.id, "username": username})
            db.execute(conn, "channel_rename", {"channel_id": channel.id, "username": username, "title": title})
        metrics.incr("telegram_channel_renames_total")
        log.warning("channel %s (%s) was renamed on Telegram: %s %r -> %s %r; channels, graph and labels follow",
                    channel.label, channel.id, channel.label, channel.title, f"@{username}" if username else "-",
                    title)


def channel_failed(conn: psycopg.Connection, client: PipelineClient, channel: Channel, exc: BaseException,
                   doing: str) -> BaseException:
    """Apply the policy for a channel's failure (``source.failures``); returns what stands in
    for the channel's answer. Raises what no channel can get past: an unusable session, an outage."""
    if isinstance(exc, SessionUnusable) or is_transient(exc):
        raise exc
    kind = meaning(exc)
    if kind is Meaning.SESSION_UNUSABLE:
        raise SessionUnusable(client.conn_id, exc) from exc
    if kind is Meaning.CHANNEL_UNAVAILABLE:
        return mark_unavailable(conn, channel, exc, doing)
    if is_server_error(exc):
        metrics.incr("telegram_server_errors_total", label=error_name(exc).lower())
    record_failure(conn, channel, exc, doing)
    return exc


def mark_unavailable(conn: psycopg.Connection, channel: Channel, exc: BaseException, doing: str) -> ChannelUnavailable:
    """Set the channel aside: later runs pass it over until it is re-checked or re-enabled; its rows stay."""
    reason = error_name(exc)
    with conn.transaction():
        db.execute(conn, "channel_unavailable", {"channel_id": channel.id, "reason": reason})
    metrics.incr("telegram_channels_unavailable_total", label=reason.lower())
    log.error("channel %s (%s): Telegram refused it while %s (%s: %s); it is set aside with its rows kept (mark "
              "%d), re-checked after unavailable_recheck_hours, or at once with `python -m include.album channels "
              "enable %s`", channel.label, channel.id, doing, reason, exc, channel.hwm, channel.id)
    return ChannelUnavailable(channel, reason)


def mark_available(conn: psycopg.Connection, channels: Sequence[Channel]) -> None:
    if not channels:
        return
    with conn.transaction():
        db.execute(conn, "channels_available", {"channel_ids": [c.id for c in channels]})
    for channel in channels:
        log.warning("channel %s (%s) is available again; it is pulled from its mark %d", channel.label, channel.id,
                    channel.hwm)


def record_failure(conn: psycopg.Connection, channel: Channel, exc: BaseException, doing: str) -> None:
    error = f"{type(exc).__name__}: {exc}"[:2000]
    failures = db.fetch_one(conn, "channel_failure_record", {"channel_id": channel.id, "error": error})["failures"]
    metrics.incr("telegram_channel_failures_total")
    log.error("channel %s (%s): %s failed (%s), %d time(s) in a row; its rows so far are kept and the next run "
              "tries again from its mark %d", channel.label, channel.id, doing, error, failures, channel.hwm)


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
    message ids, albums, the time covered, mark.

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
    return changed, tombstoned


def _emit(result: IngestResult) -> None:
    metrics.incr("telegram_messages_pulled_total", result.messages)
    metrics.incr("albums_parsed_total", len(result.album_ids), label="ok")
    metrics.incr("telegram_media_stored_bytes_total", result.media_bytes)
    if result.flood_wait_seconds:
        metrics.incr("telegram_flood_waits_total")
    for skip in result.skips:
        metrics.incr("telegram_ingest_skips_total", label=skip.reason)


def new_mark(channel: Channel, pull: Pull, fetched: Fetched) -> int:
    """The highest message id up to which every message is now stored or recorded as a skip
    (media to fetch again counts: its post is stored).

    Up to the end of the id range asked for when the pull covered it whole (ids in it that came
    back empty were deleted); over what arrived when a wait stopped the pull (an album it left
    unconfirmed is not among what arrived, so the mark stays below it)."""
    ids = [p.message_id for p, _ in fetched.posts] + [
        int(s.ref.split(":")[1]) for s in fetched.skips if s.ref.startswith("message:")]
    if pull.covered_to is not None and pull.wait is None:
        ids.append(pull.covered_to)
    return max([channel.hwm, *ids])


def ingest_channels(conn: psycopg.Connection, store: MediaStore, client: PipelineClient, channel_ids: Sequence[int],
                    settings: Settings, window: PullWindow | None = None,
                    now: datetime | None = None) -> list[IngestResult]:
    """Pull ``channel_ids`` above their marks (or over ``window``) over one Telegram connection.

    Each channel is stored atomically on its own. One that fails for its own sake is recorded
    (``record_failure``) and the others go on; an outage of our stores or an unusable session
    is raised at once (the task retries; the channels done so far keep their rows and marks).
    In a backfill window, a channel deferred by a wait or failed makes the task raise
    ``ChannelDeferred`` at the end, so Airflow pulls the window again later.
    """
    results = asyncio.run(_ingest_channels(conn, store, client, channel_ids, settings, window,
                                           now or datetime.now(UTC)))
    if window is not None:  # (a channel Telegram refuses cannot be pulled by retrying)
        unfinished = [r for r in results if r.error or r.deferred_until]
        if unfinished:
            raise ChannelDeferred("the backfill window of " + ", ".join(
                f"channel {r.channel_id} ({_why_unfinished(r)})" for r in unfinished)
                + " is not complete; the task retries it (the unit's other channels are stored)")
    return results


def _why_unfinished(result: IngestResult) -> str:
    if result.error:
        return result.error
    wait = f"a wait of {result.flood_wait_seconds}s, {result.wait_error}," if result.wait_error else "in a wait"
    return f"{wait} until {result.deferred_until.isoformat(timespec='seconds')}"


async def _media_to_fetch_again(conn: psycopg.Connection, client: PipelineClient, channel: Channel, settings: Settings,
                                now: datetime) -> tuple[list[Any], list[int]]:
    """The messages whose media (or preview) is due to be fetched again, fetched again by id: one
    request per 100. Returns them, and the ids of those deleted meanwhile (tombstoned)."""
    ids = [r["message_id"] for r in db.fetch_all(conn, "media_retries_due", {
        "channel_id": channel.id, "now": now, "limit": settings.max_messages_per_pull})]
    if not ids:
        return [], []
    answers = await client.get_messages(input_peer(channel), ids=ids)
    messages = [m for m in answers if m is not None]
    deleted = [i for i, m in zip(ids, answers, strict=True) if m is None]
    log.info("channel %s: fetching the media of %d earlier messages again: %s", channel.label, len(messages),
             ids[:20])
    return messages, deleted


def _covered_by(conn: psycopg.Connection, channel: Channel, window: PullWindow | None, pull: Pull,
                settings: Settings) -> Cover | None:
    """The time a whole pull read: every message dated in it is now stored (history need not ask again)."""
    if window is not None:
        return Cover(window.start, window.end)
    if not pull.messages:
        return None
    newest = pull.messages[-1].date
    if channel.hwm == 0:  # the channel's newest messages: all of them when fewer came than asked for
        if len(pull.messages) < settings.max_messages_per_pull:
            return Cover(None, newest)
        return Cover(pull.messages[0].date, newest, "()")
    at_mark = db.fetch_one(conn, "post_at_mark", {"channel_id": channel.id, "hwm": channel.hwm})
    return Cover(at_mark["posted_at"], newest) if at_mark else None  # from the last pull's newest on


def ingest_channel(conn: psycopg.Connection, store: MediaStore, client: PipelineClient, channel_id: int,
                   settings: Settings,
                   window: PullWindow | None = None, now: datetime | None = None) -> IngestResult:
    """One channel: ``ingest_channels`` of one."""
    return ingest_channels(conn, store, client, [channel_id], settings, window, now)[0]


async def for_each_channel(conn: psycopg.Connection, client: PipelineClient, channel_ids: Sequence[int], doing: str,
                           action: Callable[[Channel], Awaitable[T]],
                           now: datetime | None = None) -> list[T | BaseException]:
    """``await action(channel)`` for each channel, in order, over one Telegram connection that
    obeys the session's stored waits and keeps the new ones (``session.telegram_session``).

    A channel that fails is handled by ``channel_failed`` and an exception takes its place in
    the answer: its error (recorded on its row), a ``ChannelUnavailable``, or a
    ``ChannelDeferred`` (not a failure: Telegram asked us to wait, or kept failing for the
    channels before it); the others go on. An unusable session or an outage of our stores is
    raised at once (what was stored so far stays).
    """
    now = now or datetime.now(UTC)
    answers: list[T | BaseException] = []
    telegram_down = 0  # channels in a row that Telegram failed (5xx, timeouts) after Telethon's retries
    async with telegram_session(conn, client, now):
        for channel in load_channels(conn, channel_ids, now):
            if telegram_down >= TELEGRAM_DOWN_STREAK:
                answers.append(ChannelDeferred(f"channel {channel.label} ({channel.id}) not asked: Telegram failed "
                                               f"the {telegram_down} channels before it; the next run tries again"))
                continue
            try:
                answer = await action(channel)
            except ChannelDeferred as exc:
                log.warning("%s", exc)
                client.forget_flood_wait()
                answers.append(exc)
                continue
            except Exception as exc:
                answers.append(channel_failed(conn, client, channel, exc, doing))
                telegram_down = telegram_down + 1 if is_server_error(exc) else 0
                if telegram_down == TELEGRAM_DOWN_STREAK:
                    log.warning("Telegram failed %d channels in a row after its retries; the unit's remaining "
                                "channels are left for the next run without asking", telegram_down)
                continue
            telegram_down = 0
            if channel.state == "unavailable":
                mark_available(conn, [channel])
            answers.append(answer)
    return answers


async def _ingest_channels(conn: psycopg.Connection, store: MediaStore, client: PipelineClient,
                           channel_ids: Sequence[int],
                           settings: Settings, window: PullWindow | None, now: datetime) -> list[IngestResult]:
    answers = await for_each_channel(conn, client, channel_ids, "pulling", lambda channel: _ingest_one(
        conn, store, client, channel, settings, window, now), now)
    results = []
    for channel_id, answer in zip(channel_ids, answers, strict=True):
        if isinstance(answer, ChannelUnavailable):
            answer = IngestResult(channel_id=channel_id, unavailable=answer.reason)
        elif isinstance(answer, BaseException):
            answer = IngestResult(channel_id=channel_id, error=f"{type(answer).__name__}: {answer}")
        results.append(answer)
    return results


async def _ingest_one(conn: psycopg.Connection, store: MediaStore, client: PipelineClient, channel: Channel,
                      settings: Settings,
                      window: PullWindow | None, now: datetime) -> IngestResult:
    result = IngestResult(channel_id=channel.id, hwm=channel.hwm)
    if _deferred(channel, now):
        log.warning("channel %s (%s) is in a Telegram FloodWait until %s; skipped this run, it catches up afterwards",
                    channel.label, channel.id, channel.flood_wait_until.isoformat())
        result.deferred_until = channel.flood_wait_until
        return result
    nothing_new = window is None and channel.top_message is not None and channel.top_message <= channel.hwm
    if nothing_new and not channel.media_pending:
        log.info("channel %s: nothing above its mark %d (newest %d); Telegram not asked", channel.label,
                 channel.hwm, channel.top_message)
        return result

    fetched = Fetched()
    await client.open()
    pull = Pull() if nothing_new else await pull_channel(client, channel, window, settings.max_messages_per_pull)
    cover = _covered_by(conn, channel, window, pull, settings) if pull.wait is None else None
    deleted: list[int] = []
    if window is None and channel.media_pending and pull.wait is None:
        try:
            again, deleted = await _media_to_fetch_again(conn, client, channel, settings, now)
            pull.messages[:0] = again
        except Exception as exc:  # the new messages are stored; the media waits with the channel
            pull.wait = Wait.of(exc)
            if pull.wait is None:
                raise
    fetched.wait = pull.wait
    fetched.skips.extend(client.transport_problems(channel.id))
    await fetch_media(conn, client, store, channel, pull.messages, settings, fetched, now)

    flood_until = None
    if fetched.wait is not None:
        flood_until = fetched.wait.until  # counted from when Telegram gave it, not from the unit's start
        result.flood_wait_seconds, result.wait_error = fetched.wait.seconds, fetched.wait.error
        result.deferred_until = flood_until
    hwm = new_mark(channel, pull, fetched) if window is None else channel.hwm

    result.album_ids, _ = write_fetched(conn, channel.id, fetched, hwm=hwm, flood_wait_until=flood_until,
                                        deleted=deleted, now=now, cover=cover)

    result.messages = len(fetched.posts)
    result.skips = fetched.skips
    result.retries = fetched.retries
    result.hwm = max(channel.hwm, hwm)
    stored = {m.sha256: m.size for _, pm in fetched.posts for m in (pm.media, pm.thumb) if m is not None}
    result.media_stored, result.media_bytes = len(stored), sum(stored.values())
    _emit(result)
    for skip in fetched.skips:
        log.warning("skipped %s: %s", skip.reason, skip.detail)
    log.info("channel %s: %d posts, %d media objects (%d bytes), %d skips, %d media to fetch again, %d albums "
             "new/changed, mark %d", channel.label, result.messages, result.media_stored, result.media_bytes,
             len(result.skips), len(result.retries), len(result.album_ids), result.hwm)
    if flood_until is not None:
        log.warning("channel %s (%s): Telegram asked for a wait of %ss (%s); stored what arrived before it, deferred "
                    "until %s", channel.label, channel.id, fetched.wait.seconds, fetched.wait.error,
                    flood_until.isoformat())
        if not client.forget_flood_wait():
            log.warning("a second wait in a row on this connection: the wait is the session's, so the unit's "
                        "remaining channels that need that request are deferred with it, without asking Telegram")
    return result
