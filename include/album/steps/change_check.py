"""Which channels a scheduled run pulls: Telegram is asked for their newest message ids (a few
requests for many channels, ``source.changes``), the answers stored, renames followed, and only
channels with something above their mark, or media due to be fetched again, are pulled."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import UTC, datetime

import psycopg

from include.album.domain.lifecycle import ChannelState
from include.album.domain.models import Channel
from include.album.domain.settings import Settings
from include.album.source.changes import NewestMessages, newest_message_ids
from include.album.source.client import CHANGE_CHECK, REQUEST_RETRIES, PipelineClient
from include.album.source.failures import Meaning, SessionUnusable, error_name, meaning
from include.album.source.pull import PullWindow
from include.album.steps import metrics
from include.album.steps.channels import channel_failed, channels_to_pull, deferred, mark_available
from include.album.steps.session import stored_waits, telegram_session
from include.album.stores import db

log = logging.getLogger(__name__)


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
            if channel.state != ChannelState.ACTIVE:
                log.warning("channel %s (%s) is set aside as unavailable; this backfill window leaves it out",
                            channel.label, channel.id)
        return [c.id for c in channels if c.state == ChannelState.ACTIVE]
    waiting = [c for c in channels if deferred(c, now)]
    for channel in waiting:
        log.info("channel %s is in a Telegram FloodWait until %s; not asked this run", channel.label,
                 channel.flood_wait_until.isoformat())
    due = [c for c in channels if not deferred(c, now)]
    check_wait = stored_waits(conn, client.conn_id, now).get(CHANGE_CHECK) if due else None
    if check_wait is not None:
        changed = [c.id for c in due if c.state == ChannelState.ACTIVE and (_above_mark(c) or c.media_pending)]
        log.warning("Telegram asked this session to wait (%s) until %s before asking which channels changed: not "
                    "asked this run (no request); pulling the %d channels earlier answers put above their mark "
                    "or with media due", check_wait.error, check_wait.until.isoformat(timespec="seconds"),
                    len(changed))
        return changed
    found = asyncio.run(_newest(conn, client, due, now))
    _keep_answers(conn, client, due, found)
    changed = [c.id for c in due if found.newest.get(c.id, 0) > c.hwm or (c.media_pending and c.id in found.newest)]
    outside = sum(1 for c in due if found.in_dialogs.get(c.id) is False)
    log.info("%d subscribed channels: %d changed, %d unchanged, %d deferred, %d failed (%d read outside the "
             "account's dialogs)", len(channels), len(changed), len(found.newest) - len(changed), len(waiting),
             len(found.failed), outside)
    return changed


def find_hinted_channels(conn: psycopg.Connection, settings: Settings, now: datetime | None = None) -> list[int]:
    """The channels a run the updates listener started pulls, in id order, without a request:
    those with something above their mark as far as is known (``channels.top_message``: the
    listener keeps what it heard there before its event is sent; the change check keeps what
    Telegram answered). Every hint since the last run counts, whichever event carried it, and a
    channel heard twice is pulled once; a hint at or below the mark (already pulled) is nothing.
    A channel whose last pull failed is left to the schedule's runs until it is heard again
    (events can come every few seconds; its retries should not)."""
    now = now or datetime.now(UTC)
    channels = channels_to_pull(conn, settings, now)
    due = [c for c in channels if c.state == ChannelState.ACTIVE and not deferred(c, now)]
    hinted = [c.id for c in due if _above_mark(c) and _heard_since_failing(c)]
    log.info("%d subscribed channels: %d heard posting above their mark (the listener's hints), no request to "
             "ask", len(channels), len(hinted))
    return hinted


def _keep_answers(conn: psycopg.Connection, client: PipelineClient, due: Sequence[Channel],
                  found: NewestMessages) -> None:
    """Store what Telegram said of each channel asked: its newest message, its names, whether it
    is available again, or its failure; say why the channels not asked were not."""
    observed = sorted(found.newest)
    db.execute(conn, "channels_observe", {"channel_ids": observed, "top_messages": [found.newest[i] for i in observed],
                                          "in_dialogs": [found.in_dialogs.get(i, True) for i in observed]})
    follow_renames(conn, due, found)
    mark_available(conn, [c for c in due if c.state == ChannelState.UNAVAILABLE and c.id in found.newest])
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


def _heard_since_failing(channel: Channel) -> bool:
    if channel.last_error_at is None:
        return True
    return channel.hinted_at is not None and channel.hinted_at > channel.last_error_at


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

