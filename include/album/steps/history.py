"""A channel's past, a day at a time (the DAG ``telegram_albums_history``): requests follow messages.

Every channel keeps the time its stored history covers (``channels.covered``: every message
dated in it is stored, or recorded as a skip). Importing a day fills only what of the day is
not covered yet, a page of 100 messages (``messages.getHistory``) per request, and every page
is stored whole — also the messages beyond the day — and added to the covered time in the
same transaction as its rows. So a later day a page already reached costs no request, and a
span with no messages costs one request for the whole span. A gap is paged towards the time
that is not covered yet: back from a covered end, else forward from its start; a backfill
costs about one request per 100 messages in either order.

An album never comes in part: at a page's far edge the album that may go on beyond the page is
left for the next page (which starts with it), and at the near edge of a page that starts in
time nothing covers yet, its members are confirmed (``pull._album_edge``: one request, only
when the first message is an album's). History pulls never move the live marks; a message a
live pull stores too is one row (the same upsert, under the same per-channel lock).

A task is bounded (``history_requests_per_task`` requests or ``history_seconds_per_task``
seconds, then ``HistoryPaused``: the task is rescheduled and goes on where it stopped, after the
live DAG's waiting tasks, which have priority); a wait Telegram asks for pauses history alone
until it ends (it is not kept as the session's: the live DAG goes on).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from include.album.domain.lifecycle import ChannelState
from include.album.domain.models import Channel
from include.album.domain.settings import ConfigurationError, Settings
from include.album.source.changes import newest_message_ids
from include.album.source.client import PipelineClient, input_peer
from include.album.source.failures import Wait
from include.album.source.pull import (
    HISTORY_PAGE,
    KEPT_FRESH,
    Page,
    PullWindow,
    _album_edge,
    history_page,
    kept_messages,
)
from include.album.steps import metrics
from include.album.steps.channels import ChannelUnavailable, channel_failed, channels_to_pull, load_channels
from include.album.steps.downloads import Fetched, fetch_media
from include.album.steps.session import telegram_session
from include.album.steps.writes import Cover, write_fetched
from include.album.stores import db
from include.album.stores.media import MediaStore

log = logging.getLogger(__name__)

# How soon a task that used its budget is run again (the live DAG's queued tasks go first).
RESUME_AFTER = timedelta(seconds=2)
# A newest message id the live DAG's change check stored this recently is not asked again.
FRESH_NEWEST = timedelta(minutes=10)


class HistoryPaused(Exception):
    """History stops here, its work so far stored: go on at ``resume_at`` (a wait's end, or at
    once after the live DAG's waiting tasks when the task's budget is spent)."""

    def __init__(self, why: str, resume_at: datetime):
        super().__init__(f"{why}; history goes on at {resume_at.isoformat(timespec='seconds')}")
        self.resume_at = resume_at


class HistoryIncomplete(Exception):
    """Some channels could not be imported for their own sake (recorded on their rows): retry."""


@dataclass
class HistoryResult:
    channel_id: int
    messages: int = 0
    requests: int = 0  # requests for the channel's messages (pages, album members, its newest id), not downloads
    album_ids: list[int] = field(default_factory=list)
    unavailable: str | None = None


@dataclass(frozen=True)
class _Gap:
    start: datetime
    end: datetime
    end_included: bool  # (a second that two pages each left out: [end, end] when start == end)
    before_covered: bool  # the time just before it is covered
    after_covered: bool  # the time just after it is covered

    @property
    def until(self) -> datetime:
        """Where a page back through the gap starts: messages dated before this (seconds are whole)."""
        return self.end + timedelta(seconds=1) if self.end_included else self.end


def reads(client: PipelineClient) -> int:
    """The requests a client made, file downloads aside (what history's budget and targets count)."""
    return sum(n for name, n in client.requests.items() if name != "GetFileRequest")


@dataclass
class _Budget:
    requests: int
    seconds: float
    client: PipelineClient
    started: float = field(default_factory=time.monotonic)
    reads_before: int = 0

    def __post_init__(self) -> None:
        self.reads_before = reads(self.client)

    def check(self) -> None:
        spent, elapsed = reads(self.client) - self.reads_before, time.monotonic() - self.started
        if spent >= self.requests or elapsed >= self.seconds:
            raise HistoryPaused(f"this task's share of the session is used ({spent} requests in {elapsed:.0f} s)",
                                datetime.now(UTC) + RESUME_AFTER)


def channels_asked(conn: psycopg.Connection, settings: Settings, asked: Any) -> list[Channel]:
    """The channels a history run imports: those ``asked`` (ids or ``@usernames``, as
    ``--dag-run-conf '{"channels": [...]}'`` gives them), else every subscribed channel not set aside."""
    subscribed = [c for c in channels_to_pull(conn, settings) if c.state == ChannelState.ACTIVE]
    if asked is None:
        return subscribed
    if not isinstance(asked, list) or not asked:
        raise ConfigurationError(f'--dag-run-conf "channels" must be a list of channel ids or @usernames, not '
                                 f"{asked!r}")
    by_name = {f"@{c.username.lower()}": c for c in subscribed if c.username}
    by_id = {c.id: c for c in subscribed}
    found, unknown = [], []
    for wanted in asked:
        key = str(wanted).strip()
        channel = by_name.get(key.lower()) if key.startswith("@") else by_id.get(int(key)) if key.isdigit() else None
        (found if channel else unknown).append(channel or wanted)
    if unknown:
        raise ConfigurationError(f"--dag-run-conf channels {unknown} are not subscribed channels (or are set aside): "
                                 "`python -m include.album channels list` shows them")
    return sorted(set(found), key=lambda c: c.id)


def request_days(conn: psycopg.Connection, channel_ids: Sequence[int], day: PullWindow) -> None:
    """Remember that ``day`` was asked for (what of it is not covered yet is the import to do)."""
    with conn.transaction():
        db.execute(conn, "channels_history_request", {"channel_ids": list(channel_ids), "start": day.start,
                                                      "end": day.end})


def import_history(conn: psycopg.Connection, store: MediaStore, client: PipelineClient, channel_ids: Sequence[int],
                   settings: Settings, day: PullWindow) -> list[HistoryResult]:
    """Import ``day`` of each channel over one Telegram connection (see the module's docstring).

    Raises ``HistoryPaused`` when the task's budget is spent or Telegram asks for a wait (what
    was stored stays), and ``HistoryIncomplete`` at the end when channels failed for their own
    sake (recorded on their rows; the task retries them). A channel Telegram refuses is set aside.
    """
    request_days(conn, channel_ids, day)
    budget = _Budget(settings.history_requests_per_task, settings.history_seconds_per_task, client)
    results, failed = asyncio.run(_import(conn, store, client, channel_ids, settings, day, budget))
    if failed:
        raise HistoryIncomplete(f"{len(failed)} channels were not imported for {day.start.date()} ("
                                + "; ".join(failed) + "); the task retries them (the others are stored)")
    return results


async def _import(conn: psycopg.Connection, store: MediaStore, client: PipelineClient, channel_ids: Sequence[int],
                  settings: Settings, day: PullWindow, budget: _Budget) -> tuple[list[HistoryResult], list[str]]:
    results, failed = [], []
    async with telegram_session(conn, client):
        for channel in load_channels(conn, channel_ids):
            result = HistoryResult(channel.id)
            results.append(result)
            try:
                await _DayImport(conn, store, client, channel, settings, day, budget, result).run()
            except HistoryPaused:
                raise
            except Exception as exc:
                wait = Wait.of(exc)
                if wait is not None:
                    raise HistoryPaused(f"Telegram asked for a wait of {wait.seconds}s ({wait.error}) while importing "
                                        f"channel {channel.label}", wait.until) from exc
                answer = channel_failed(conn, client, channel, exc, f"importing {day.start.date()}")
                if isinstance(answer, ChannelUnavailable):
                    result.unavailable = answer.reason
                else:
                    failed.append(f"channel {channel.label}: {type(exc).__name__}: {exc}")
    return results, failed


@dataclass
class _DayImport:
    """One channel's day: its gaps filled page by page."""

    conn: psycopg.Connection
    store: MediaStore
    client: PipelineClient
    channel: Channel
    settings: Settings
    day: PullWindow
    budget: _Budget
    result: HistoryResult
    _newest: int | None = None

    async def run(self) -> None:
        end = min(self.day.end, self.client.now())
        before = reads(self.client)
        await self._store([], None)  # what earlier pages brought of this day
        gaps = self._gaps(end) if end > self.day.start else []
        while gaps:
            gap = gaps[0]
            if gap.after_covered:
                await self._back(gap)
            else:
                await self._forward(gap)
            left = self._gaps(end)
            if left and left[0] == gap:  # (a page always covers more; never ask the same again)
                raise RuntimeError(f"channel {self.channel.label}: importing {gap.start}..{gap.end} made no progress")
            gaps = left
        self.result.requests = reads(self.client) - before
        log.info("channel %s: %s imported: %d messages stored, %d requests", self.channel.label,
                 self.day.start.date(), self.result.messages, self.result.requests)

    def _gaps(self, end: datetime) -> list[_Gap]:
        return [_Gap(**row) for row in db.fetch_all(self.conn, "channel_gaps", {
            "channel_id": self.channel.id, "start": self.day.start, "end": end})]

    async def _page(self, **kwargs: Any) -> Page:
        self.budget.check()
        await self.client.open()
        return await history_page(self.client, self.channel, **kwargs)

    async def _forward(self, gap: _Gap) -> None:
        """Pages from the gap's start on, until one reaches past its end or the newest message."""
        cursor: dict[str, Any] = {"offset_date": gap.start}
        while True:
            page = await self._page(newer=True, **cursor)
            messages = page.messages
            starts_inside_an_album = messages and getattr(messages[0], "grouped_id", None) is not None
            if "offset_date" in cursor and starts_inside_an_album and not gap.before_covered:
                # the album's members before the gap, where nothing is covered: confirmed by id
                messages = await _album_edge(self.client, input_peer(self.channel), messages[0], newer=False) \
                    + messages
            full = len(page.messages) == HISTORY_PAGE
            if page.whole or not messages or (not full and messages[-1].id >= await self._newest_id()):
                # nothing after the gap's start that this page does not hold
                await self._store(messages, Cover(gap.start, self.client.now(), "[)"))
                return
            if full:  # the album at its end may go on: the next page brings it whole
                messages = _without_album_at(messages, newest=True)
                covered_to = messages[-1].date  # (its last second may hold more, in the next page)
            else:  # short, but not to the newest message: Telegram left some out; go on after it
                covered_to = messages[-1].date + timedelta(seconds=1)
            await self._store(messages, Cover(gap.start, covered_to, "[)"))
            if covered_to >= gap.end:
                return
            cursor = {"offset_id": messages[-1].id + 1}

    async def _newest_id(self) -> int:
        """The channel's newest message id, asked once (``messages.getPeerDialogs``): a short page
        that holds it reached the end; one that does not only met messages Telegram leaves out."""
        checked = self.channel.top_checked_at
        if self._newest is None and checked is not None and datetime.now(UTC) - checked < FRESH_NEWEST:
            self._newest = self.channel.top_message  # the live DAG's change check asked a moment ago
        if self._newest is None:
            found = await newest_message_ids(self.client, [self.channel])
            if found.wait is not None:
                raise HistoryPaused(f"Telegram asked for a wait of {found.wait.seconds}s ({found.wait.error}) "
                                    f"while asking for channel {self.channel.label}'s newest message", found.wait.until)
            if self.channel.id in found.failed:
                raise found.failed[self.channel.id]
            self._newest = found.newest.get(self.channel.id, 0)
        return self._newest

    async def _back(self, gap: _Gap) -> None:
        """Pages back from the gap's end, until one reaches before its start or the first message."""
        cursor: dict[str, Any] = {"offset_date": gap.until}
        while True:
            page = await self._page(newer=False, **cursor)
            if page.whole or not page.messages:
                await self._store(page.messages, Cover(None, gap.until, "[)"))
                return
            messages = _without_album_at(page.messages, newest=False)
            oldest = messages[0]
            await self._store(messages, Cover(oldest.date, gap.until, "()"))
            if oldest.date < gap.start:
                return
            cursor = {"offset_id": oldest.id}

    async def _store(self, page: list[Any], cover: Cover | None) -> None:
        """A page: the day's messages (and the rest of their albums, also those kept from earlier
        pages) stored as posts, media to S3 first; the rest kept for its own day; the page's
        time covered. One transaction for the rows."""
        in_day = {m.id for m in page if self.day.start <= m.date < self.day.end}
        albums = sorted({m.grouped_id for m in page if m.id in in_day and m.grouped_id is not None})
        to_post = [m for m in page if m.id in in_day or getattr(m, "grouped_id", None) in albums]
        kept = await self._kept(albums)
        posted = {r["message_id"] for r in db.fetch_all(self.conn, "posts_present", {
            "channel_id": self.channel.id, "message_ids": [m.id for m in page]})}
        to_keep = [m for m in page if m not in to_post and m.id not in posted]
        fetched = Fetched()
        await fetch_media(self.conn, self.client, self.store, self.channel, to_post + kept, self.settings, fetched)
        with self.conn.transaction():
            db.execute_many(self.conn, "history_stage", ({
                "channel_id": self.channel.id, "message_id": m.id, "posted_at": m.date,
                "grouped_id": getattr(m, "grouped_id", None), "message": bytes(m)} for m in to_keep))
            db.execute(self.conn, "history_unstage", {"channel_id": self.channel.id,
                                                      "message_ids": [m.id for m in kept]})
            album_ids, _ = write_fetched(self.conn, self.channel.id, fetched, hwm=None, cover=cover)
        self.result.messages += len(fetched.posts)
        self.result.album_ids.extend(album_ids)
        metrics.incr("history_messages_imported_total", len(fetched.posts))

    async def _kept(self, albums: list[int]) -> list[Any]:
        """The kept messages of the day and of ``albums``; fetched again by id (100 a request)
        when they were kept long ago, for file references that have not expired."""
        rows = db.fetch_all(self.conn, "history_staged_due", {
            "channel_id": self.channel.id, "start": self.day.start, "end": self.day.end, "grouped_ids": albums})
        if not rows:
            return []
        stale = [r["message_id"] for r in rows if datetime.now(UTC) - r["fetched_at"] > KEPT_FRESH]
        messages = kept_messages(rows)
        if stale:
            await self.client.open()
            again = await self.client.get_messages(input_peer(self.channel), ids=stale)
            for message_id, message in zip(stale, again, strict=True):
                messages[message_id] = message  # None: deleted since; not stored
        return [m for _, m in sorted(messages.items()) if m is not None]


def _without_album_at(messages: list[Any], *, newest: bool) -> list[Any]:
    """A full page without the album at its far edge (it may go on in the next page, which then
    brings it whole); the page as it is if that album is all of it."""
    edge = messages[-1] if newest else messages[0]
    grouped_id = getattr(edge, "grouped_id", None)
    if grouped_id is None:
        return messages
    kept = [m for m in messages if getattr(m, "grouped_id", None) != grouped_id]
    return kept or messages
