"""The channel loop every Telegram task runs, and what a channel's failure does to it.

``for_each_channel`` takes a unit of channels over one Telegram connection (``session``: the
session's stored waits obeyed, new ones kept). A channel that fails for its own sake is recorded
on its row (``record_failure``) and the others go on; a channel Telegram refuses is set aside
(``mark_unavailable``) until re-checked; an unusable session or an outage of our stores stops
the unit at once. ``source.failures`` says what each of Telegram's answers means.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import TypeVar

import psycopg

from include.album.domain.lifecycle import ChannelState
from include.album.domain.models import Channel
from include.album.domain.settings import Settings
from include.album.source.client import PipelineClient
from include.album.source.failures import Meaning, SessionUnusable, error_name, is_server_error, meaning
from include.album.steps import metrics
from include.album.steps.quarantine import is_transient
from include.album.steps.session import telegram_session
from include.album.stores import db

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
    row = db.fetch_one(conn, "channel_by_id", {"channel_id": channel_id, "now": now or datetime.now(UTC)})
    if row is None:
        raise LookupError(f"channel {channel_id} is not registered; add it with `python -m include.album channels add`")
    return Channel(**row)


def load_channels(conn: psycopg.Connection, channel_ids: Sequence[int], now: datetime | None = None) -> list[Channel]:
    """The channels of ``channel_ids`` in that order (one query for a whole unit)."""
    channels = [Channel(**row) for row in db.fetch_all(conn, "channels_by_ids", {
        "channel_ids": list(channel_ids), "now": now or datetime.now(UTC)})]
    missing = sorted(set(channel_ids) - {c.id for c in channels})
    if missing:
        raise LookupError(f"channels {missing} are not registered; add them with "
                          "`python -m include.album channels add`")
    return channels


def deferred(channel: Channel, now: datetime) -> bool:
    return channel.flood_wait_until is not None and channel.flood_wait_until > now


def channels_to_pull(conn: psycopg.Connection, settings: Settings, now: datetime | None = None) -> list[Channel]:
    """Subscribed channels, in id order; an unavailable one only once its re-check is due."""
    return [Channel(**row) for row in db.fetch_all(conn, "channels_to_pull", {
        "recheck_hours": settings.unavailable_recheck_hours, "now": now or datetime.now(UTC)})]


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
            if channel.state == ChannelState.UNAVAILABLE:
                mark_available(conn, [channel])
            answers.append(answer)
    return answers

