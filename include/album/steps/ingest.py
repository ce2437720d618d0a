"""Ingest channels: find which changed, pull, download, store, group albums, advance the marks.

A scheduled window first asks Telegram which channels have messages above their mark
(``find_changed_channels``: a few requests for many channels); only those are pulled, several per
task over one Telegram connection (``ingest_channels``). Per channel, the order matters for
correctness under retries:
1. pull messages (Telethon; those the updates listener heard are taken as Telegram sent them,
   ``heard_messages``, and not asked for again) and download their media, writing each object
   to S3 first (``downloads.fetch_media``);
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
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import psycopg

from include.album.domain.models import Channel, IngestResult
from include.album.domain.settings import Settings
from include.album.source.client import PipelineClient, input_peer
from include.album.source.failures import Wait
from include.album.source.pull import KEPT_FRESH, Pull, PullWindow, kept_messages, pull_channel
from include.album.steps import metrics
from include.album.steps.channels import ChannelDeferred, ChannelUnavailable, deferred, for_each_channel
from include.album.steps.downloads import Fetched, fetch_media
from include.album.steps.writes import Cover, write_fetched
from include.album.stores import db
from include.album.stores.media import MediaStore

log = logging.getLogger(__name__)


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


def ingest_channel(conn: psycopg.Connection, store: MediaStore, client: PipelineClient, channel_id: int,
                   settings: Settings,
                   window: PullWindow | None = None, now: datetime | None = None) -> IngestResult:
    """One channel: ``ingest_channels`` of one."""
    return ingest_channels(conn, store, client, [channel_id], settings, window, now)[0]


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
                      settings: Settings, window: PullWindow | None, now: datetime) -> IngestResult:
    result = IngestResult(channel_id=channel.id, hwm=channel.hwm)
    if deferred(channel, now):
        log.warning("channel %s (%s) is in a Telegram FloodWait until %s; skipped this run, it catches up afterwards",
                    channel.label, channel.id, channel.flood_wait_until.isoformat())
        result.deferred_until = channel.flood_wait_until
        return result
    nothing_new = window is None and channel.top_message is not None and channel.top_message <= channel.hwm
    if nothing_new and not channel.media_pending:
        log.info("channel %s: nothing above its mark %d (newest %d); Telegram not asked", channel.label,
                 channel.hwm, channel.top_message)
        return result

    await client.open()
    pull = Pull() if nothing_new else await pull_channel(client, channel, window, settings.max_messages_per_pull,
                                                         _heard(conn, channel, window, settings))
    cover = _covered_by(conn, channel, window, pull, settings) if pull.wait is None else None
    deleted = await _with_media_to_fetch_again(conn, client, channel, settings, window, pull, now)
    fetched = Fetched(wait=pull.wait, skips=client.transport_problems(channel.id))
    await fetch_media(conn, client, store, channel, pull.messages, settings, fetched, now)

    flood_until = fetched.wait.until if fetched.wait else None  # counted from when Telegram gave it
    hwm = new_mark(channel, pull, fetched) if window is None else channel.hwm
    result.album_ids, _ = write_fetched(conn, channel.id, fetched, hwm=hwm, flood_wait_until=flood_until,
                                        deleted=deleted, now=now, cover=cover)
    _report(client, channel, result, fetched, max(channel.hwm, hwm))
    return result


async def _with_media_to_fetch_again(conn: psycopg.Connection, client: PipelineClient, channel: Channel,
                                     settings: Settings, window: PullWindow | None, pull: Pull,
                                     now: datetime) -> list[int]:
    """Prepend to ``pull`` the earlier messages whose media is due to be fetched again; returns the
    ids of those deleted meanwhile. A wait here keeps the new messages and defers the rest."""
    if window is not None or not channel.media_pending or pull.wait is not None:
        return []
    try:
        again, deleted = await _media_to_fetch_again(conn, client, channel, settings, now)
    except Exception as exc:
        pull.wait = Wait.of(exc)
        if pull.wait is None:
            raise
        return []
    pull.messages[:0] = again
    return deleted


def _heard(conn: psycopg.Connection, channel: Channel, window: PullWindow | None,
           settings: Settings) -> dict[int, Any]:
    """What the updates listener heard of the channel above its mark, up to its newest message
    (id -> message): the pull takes these instead of asking for them."""
    if window is not None or channel.hwm == 0 or channel.top_message is None:
        return {}
    last = min(channel.top_message, channel.hwm + settings.max_messages_per_pull)
    rows = db.fetch_all(conn, "heard_of", {"channel_id": channel.id, "hwm": channel.hwm, "last": last,
                                           "fresh": KEPT_FRESH})
    return kept_messages(rows)


def _report(client: PipelineClient, channel: Channel, result: IngestResult, fetched: Fetched, hwm: int) -> None:
    """What a channel's pull did: into ``result``, the metrics and the log."""
    result.messages, result.skips, result.retries, result.hwm = len(fetched.posts), fetched.skips, fetched.retries, hwm
    if fetched.wait is not None:
        result.flood_wait_seconds, result.wait_error = fetched.wait.seconds, fetched.wait.error
        result.deferred_until = fetched.wait.until
    stored = {m.sha256: m.size for _, pm in fetched.posts for m in (pm.media, pm.thumb) if m is not None}
    result.media_stored, result.media_bytes = len(stored), sum(stored.values())
    _emit(result)
    for skip in fetched.skips:
        log.warning("skipped %s: %s", skip.reason, skip.detail)
    log.info("channel %s: %d posts, %d media objects (%d bytes), %d skips, %d media to fetch again, %d albums "
             "new/changed, mark %d", channel.label, result.messages, result.media_stored, result.media_bytes,
             len(result.skips), len(result.retries), len(result.album_ids), result.hwm)
    if fetched.wait is not None:
        log.warning("channel %s (%s): Telegram asked for a wait of %ss (%s); stored what arrived before it, deferred "
                    "until %s", channel.label, channel.id, fetched.wait.seconds, fetched.wait.error,
                    fetched.wait.until.isoformat())
        if not client.forget_flood_wait():
            log.warning("a second wait in a row on this connection: the wait is the session's, so the unit's "
                        "remaining channels that need that request are deferred with it, without asking Telegram")


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


def _why_unfinished(result: IngestResult) -> str:
    if result.error:
        return result.error
    wait = f"a wait of {result.flood_wait_seconds}s, {result.wait_error}," if result.wait_error else "in a wait"
    return f"{wait} until {result.deferred_until.isoformat(timespec='seconds')}"


def _emit(result: IngestResult) -> None:
    metrics.incr("telegram_messages_pulled_total", result.messages)
    metrics.incr("albums_parsed_total", len(result.album_ids), label="ok")
    metrics.incr("telegram_media_stored_bytes_total", result.media_bytes)
    if result.flood_wait_seconds:
        metrics.incr("telegram_flood_waits_total")
    for skip in result.skips:
        metrics.incr("telegram_ingest_skips_total", label=skip.reason)

