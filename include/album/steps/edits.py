"""Refresh: re-read recent messages to catch edits and deletions (the refresh DAG).

Telegram sends no change feed to a session that only pulls history, so edits and deletions
are found by asking again: the ids of a channel's live posts dated in the look-back window
go to ``get_messages(ids=...)``. A message that comes back changed is stored through the same
path as ingestion (media of an edited message included); one that comes back empty was
deleted and is tombstoned (``posts.deleted_at``). Albums touched either way are recomposed in
the same transaction; an album left without posts is tombstoned. Downstream, the changed
albums are re-assembled and re-indexed and ``indexing.remove_deleted`` takes the deleted
ones out of S3, Qdrant and the graph.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import psycopg
from telethon import errors

from include.album.domain.models import Channel
from include.album.domain.settings import Settings
from include.album.source.client import PipelineClient, input_peer
from include.album.source.failures import Wait
from include.album.steps import metrics
from include.album.steps.channels import ChannelDeferred, ChannelUnavailable, for_each_channel
from include.album.steps.downloads import Fetched, fetch_media
from include.album.steps.writes import write_fetched
from include.album.stores import db
from include.album.stores.media import MediaStore

log = logging.getLogger(__name__)

IDS_PER_REQUEST = 100  # channels.getMessages takes at most 100 ids


@dataclass
class RefreshResult:
    channel_id: int
    checked: int = 0
    edited: list[int] = field(default_factory=list)     # message ids stored again because they changed
    deleted: list[int] = field(default_factory=list)    # message ids tombstoned
    album_ids: list[int] = field(default_factory=list)  # albums recomposed (to re-assemble and re-index)
    albums_deleted: list[int] = field(default_factory=list)


async def _reread(conn: psycopg.Connection, client: PipelineClient, store: MediaStore, channel: Channel,
                  message_ids: list[int],
                  settings: Settings) -> tuple[Fetched, list[int]]:
    fetched, deleted, found = Fetched(), [], []
    peer = input_peer(channel)
    for start in range(0, len(message_ids), IDS_PER_REQUEST):
        chunk = message_ids[start:start + IDS_PER_REQUEST]
        answers = await client.get_messages(peer, ids=chunk)
        for message_id, message in zip(chunk, answers, strict=True):
            if message is None:
                deleted.append(message_id)
            else:
                found.append(message)
    await fetch_media(conn, client, store, channel, found, settings, fetched)
    return fetched, deleted


def refresh_channels(conn: psycopg.Connection, store: MediaStore, client: PipelineClient, channel_ids: Sequence[int],
                     settings: Settings, since: datetime, until: datetime) -> list[RefreshResult]:
    """Re-read the posts of ``channel_ids`` dated in [since, until) over one Telegram connection;
    store edits, tombstone deletions. A channel deferred by a FloodWait or failed for its own
    sake (recorded on its row) does not stop the others; the task then raises ``ChannelDeferred``
    at the end, so Airflow refreshes the unit again later (what was stored stays, a second pass
    finds nothing more to change). A channel Telegram refuses is set aside, not retried."""
    answers = asyncio.run(for_each_channel(conn, client, channel_ids, "refreshing", lambda channel: _refresh_one(
        conn, store, client, channel, settings, since, until)))
    problems = [a for a in answers if isinstance(a, BaseException) and not isinstance(a, ChannelUnavailable)]
    if problems:
        raise ChannelDeferred(f"{len(problems)} of {len(channel_ids)} channels were not refreshed "
                              f"({'; '.join(map(str, problems))}); the task retries them") from problems[0]
    return [RefreshResult(channel_id) if isinstance(a, ChannelUnavailable) else a
            for channel_id, a in zip(channel_ids, answers, strict=True)]


async def _refresh_one(conn: psycopg.Connection, store: MediaStore, client: PipelineClient, channel: Channel,
                       settings: Settings,
                       since: datetime, until: datetime) -> RefreshResult:
    channel_id = channel.id
    result = RefreshResult(channel_id=channel_id)
    known = [r["message_id"] for r in db.fetch_all(conn, "posts_recent", {"channel_id": channel_id,
                                                                         "since": since, "until": until})]
    result.checked = len(known)
    if not known:
        log.info("channel %s: no posts dated %s..%s to refresh", channel.label, since.isoformat(), until.isoformat())
        return result
    try:
        await client.open()
        fetched, deleted = await _reread(conn, client, store, channel, known, settings)
    except errors.RPCError as exc:
        wait = Wait.of(exc)
        if wait is None:
            raise
        raise ChannelDeferred(f"channel {channel.label} ({channel.id}): Telegram asked for a wait of {wait.seconds}s "
                              f"({wait.error}) during the refresh; the task retries later, nothing was changed") \
            from exc
    before = {r["message_id"]: r for r in db.fetch_all(conn, "posts_versions", {"channel_id": channel_id,
                                                                               "message_ids": known})}
    result.album_ids, result.albums_deleted = write_fetched(conn, channel_id, fetched, hwm=None, deleted=deleted)
    after = {r["message_id"]: r for r in db.fetch_all(conn, "posts_versions", {"channel_id": channel_id,
                                                                              "message_ids": known})}
    result.edited = sorted(m for m, row in after.items() if m in before and row != before[m] and m not in deleted)
    result.deleted = sorted(deleted)
    metrics.incr("telegram_refresh_changes_total", len(result.edited), label="edited")
    metrics.incr("telegram_refresh_changes_total", len(result.deleted), label="deleted")
    log.info("channel %s: re-read %d posts dated %s..%s: %d edited %s, %d deleted %s; albums recomposed %s, "
             "tombstoned %s", channel.label, result.checked, since.isoformat(), until.isoformat(),
             len(result.edited), result.edited[:50], len(result.deleted), result.deleted[:50], result.album_ids,
             result.albums_deleted)
    return result
