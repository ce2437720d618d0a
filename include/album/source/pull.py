"""Pulling a channel: the new messages above its mark or in a window, albums cut at the edge, downloads."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from telethon import TelegramClient, errors, functions, types, utils
from telethon.extensions import BinaryReader

from include.album.domain.grouping import TELEGRAM_MAX_ALBUM_ITEMS
from include.album.domain.models import Channel
from include.album.source.client import input_peer
from include.album.source.failures import Wait

# How long a message kept from an earlier answer (a history page's, an update's) is used as it
# is: its photos' file references expire within hours; older ones are asked for again.
KEPT_FRESH = timedelta(minutes=30)


def kept_messages(rows: list[dict]) -> dict[int, Any]:
    """Messages kept as Telegram sent them (rows of ``message_id`` and TL ``message`` bytes), by id."""
    return {r["message_id"]: BinaryReader(r["message"]).tgread_object() for r in rows}


@dataclass(frozen=True)
class PullWindow:
    """A backfill run's data interval: messages dated in [start, end)."""

    start: datetime
    end: datetime


@dataclass
class Pull:
    messages: list[Any] = field(default_factory=list)
    wait: Wait | None = None  # a wait Telegram asked for stopped the pull: what arrived before it is kept
    covered_to: int | None = None  # every id up to this one was asked for (those not returned are gone)


async def _album_edge(client: TelegramClient, peer: Any, edge: Any, *, newer: bool) -> list[Any]:
    """Confirm the members of an album cut by the pull: fetch the ids beyond the edge.

    Going newer, every message up to the last sibling is returned (so a high-water mark that
    advances over them stays gap-free); going older, only the siblings.
    """
    if edge.grouped_id is None:
        return []
    span = range(edge.id + 1, edge.id + TELEGRAM_MAX_ALBUM_ITEMS) if newer else \
        range(max(edge.id - TELEGRAM_MAX_ALBUM_ITEMS + 1, 1), edge.id)
    if not span:
        return []
    found = [m for m in await client.get_messages(peer, ids=list(span)) if m is not None]
    siblings = [m for m in found if getattr(m, "grouped_id", None) == edge.grouped_id]
    if not siblings:
        return []
    if newer:
        last = max(m.id for m in siblings)
        return [m for m in found if m.id <= last]
    return siblings


async def pull_channel(client: TelegramClient, channel: Channel, window: PullWindow | None,
                       max_messages: int, heard: Mapping[int, Any] | None = None) -> Pull:
    """Pull one channel: above its high-water mark, or a backfill window by date.

    A new channel (mark 0) starts with its newest ``max_messages``; older history is what
    ``airflow backfill create`` is for. When Telegram has said which message is the channel's
    newest (``channel.top_message``), exactly the ids above the mark up to it are asked for
    (``channels.getMessages``, 100 ids a request): one request for a window's few messages, and
    none for album members beyond the newest message, which do not exist yet; ``heard`` (id ->
    message, what the updates listener kept) are taken as they are, and only the other ids asked
    for: none when the listener heard them all. A wait longer
    than Telethon's sleep threshold stops the pull: what arrived before it is kept and
    ``wait`` is set, but an album at an edge the wait left unconfirmed is left out whole (its
    members are not known; the next pull brings it complete).
    """
    peer = input_peer(channel)
    pull = Pull()
    older_edge = window is not None or channel.hwm == 0  # else the mark says what lies before
    edges_confirmed = {"older": not older_edge, "newer": False}
    try:
        await _read(client, peer, channel, window, max_messages, pull, heard or {})
        if pull.messages:
            if older_edge:
                pull.messages[:0] = await _album_edge(client, peer, pull.messages[0], newer=False)
            edges_confirmed["older"] = True
            newest_known = window is None and channel.top_message is not None
            if not (newest_known and pull.messages[-1].id >= channel.top_message):
                pull.messages.extend(await _album_edge(client, peer, pull.messages[-1], newer=True))
        edges_confirmed["newer"] = True
    except errors.RPCError as exc:
        pull.wait = Wait.of(exc)
        if pull.wait is None:
            raise
        if window is None and channel.hwm == 0:
            pull.messages = []  # newest-first partial pull: retry it whole later
    unique = {m.id: m for m in pull.messages}
    pull.messages = sorted(unique.values(), key=lambda m: m.id)
    if pull.wait is not None:
        pull.messages = _without_unconfirmed_albums(pull.messages, **edges_confirmed)
    return pull


async def _read(client: TelegramClient, peer: Any, channel: Channel, window: PullWindow | None, max_messages: int,
                pull: Pull, heard: Mapping[int, Any]) -> None:
    """The pull's own messages into ``pull`` (its edges are confirmed by the caller)."""
    if window is not None:
        async for message in client.iter_messages(peer, offset_date=window.start, reverse=True):
            if message.date >= window.end:
                break
            pull.messages.append(message)
    elif channel.hwm == 0:
        newest = [m async for m in client.iter_messages(peer, limit=max_messages)]
        pull.messages = newest[::-1]
    elif channel.top_message is not None:
        last = min(channel.top_message, channel.hwm + max_messages)
        wanted = [i for i in range(channel.hwm + 1, last + 1) if i not in heard]
        asked = await client.get_messages(peer, ids=wanted) if wanted else []
        taken = [m for i, m in heard.items() if channel.hwm < i <= last] + [m for m in asked if m is not None]
        pull.messages = sorted(taken, key=lambda m: m.id)
        pull.covered_to = last
    else:
        async for message in client.iter_messages(peer, min_id=channel.hwm, reverse=True, limit=max_messages):
            pull.messages.append(message)


def _without_unconfirmed_albums(messages: list[Any], *, older: bool, newer: bool) -> list[Any]:
    """The messages of a pull a wait cut, without the albums at an edge whose members it left unknown."""
    cut = set()
    if messages and not older:
        cut.add(getattr(messages[0], "grouped_id", None))
    if messages and not newer:
        cut.add(getattr(messages[-1], "grouped_id", None))
    cut.discard(None)
    return [m for m in messages if getattr(m, "grouped_id", None) not in cut]


async def download(client: TelegramClient, message: Any, *, thumb: bool = False) -> bytes | None:
    """Media bytes of a message (the video preview with ``thumb=True``).

    Given the message, Telethon would fetch a document's message again on every
    FILE_REFERENCE_EXPIRED, without a bound; given its media, it raises, and the caller
    fetches the message again a bounded number of times (``downloads.FILE_REFERENCE_REFETCHES``).
    """
    if thumb:
        return await client.download_media(message.media, file=bytes, thumb=-1)
    return await client.download_media(message.media, file=bytes)


HISTORY_PAGE = 100  # messages per messages.getHistory: Telegram's most


@dataclass
class Page:
    """One ``messages.getHistory`` answer, oldest first; ``whole``: nothing lies beyond it in its
    direction (it reached the channel's first message, or its newest)."""

    messages: list[Any]
    whole: bool


async def history_page(client: TelegramClient, channel: Channel, *, newer: bool, offset_date: datetime | None = None,
                       offset_id: int = 0) -> Page:
    """The ``HISTORY_PAGE`` messages before ``offset_date`` (or below ``offset_id``), or with
    ``newer`` from it on (``offset_id`` itself included): exactly one request.

    A short answer does not prove the end (Telegram leaves out messages it may not show in a
    country), so, as Telethon decides: going older, the end is reached when the answer is empty
    or holds only ids up to ``HISTORY_PAGE`` (ids start at 1); going newer, when it is empty.
    """
    request = functions.messages.GetHistoryRequest(
        peer=input_peer(channel), offset_id=offset_id, offset_date=offset_date,
        add_offset=-HISTORY_PAGE if newer else 0, limit=HISTORY_PAGE, max_id=0, min_id=0, hash=0)
    answer = await client(request)
    entities = {utils.get_peer_id(x): x for x in itertools.chain(answer.users, answer.chats)}
    messages = [m for m in answer.messages if not isinstance(m, types.MessageEmpty)]
    for message in messages:
        message._finish_init(client, entities, request.peer)
    ids = [m.id for m in answer.messages]
    short = len(ids) < HISTORY_PAGE
    whole = not ids or (not newer and short and max(ids) <= HISTORY_PAGE)
    return Page(sorted(messages, key=lambda m: m.id), whole=whole)
