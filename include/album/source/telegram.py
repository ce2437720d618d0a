"""Telegram source: the client (live or archive), finding the channels that changed, pulling
a channel, reading messages.

Live and archive share every line here: the archive transport only replaces the
network below ``TelegramClient._call`` (see ``archive.py``).
"""

from __future__ import annotations

import logging
import mimetypes
import re
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from telethon import TelegramClient, errors, functions, types, utils
from telethon.sessions import StringSession

from include.album.domain.grouping import TELEGRAM_MAX_ALBUM_ITEMS
from include.album.domain.models import Channel, MediaRef, Post, Skip

log = logging.getLogger(__name__)


class PipelineClient(TelegramClient):
    """The client of every task, live or archive: counts the requests it makes, by type.

    Telegram's limits are per session and publish no numbers, so the requests a window costs
    are counted (``requests``) and reported by the tasks (metric ``telegram_requests_total``).
    A request Telethon answers itself, because it falls inside a FloodWait it remembers, never
    reaches Telegram and is not counted.
    """

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.requests: Counter[str] = Counter()
        self._open = False
        self._forgot_flood_wait = False

    async def open(self) -> None:
        """Connect and check the session, once: callers open when they first need Telegram, so a
        task with nothing to ask costs no connection. Never prompts (a task must not log in)."""
        if self._open:
            return
        await self.connect()
        if not await self.is_user_authorized():
            raise RuntimeError(
                "the Telegram session in connection telegram_default is not authorised; "
                "create a new one with `python -m include.album login`"
            )
        self._open = True

    async def close(self) -> None:
        if self._open:
            await self.disconnect()
            self._open = False

    def forget_flood_wait(self) -> bool:
        """After a FloodWait deferred one channel, let the next channel ask Telegram itself, once.

        Telethon remembers a FloodWait per request type and answers later requests of that type
        itself until it ends, so one channel's wait would defer every channel after it on this
        connection. A wait may be that one channel's: the next channel asks Telegram. If Telegram
        answers it with a FloodWait too, the wait is the session's and the memory stands: the
        remaining channels are deferred without a request. Returns whether it forgot.
        """
        if self._forgot_flood_wait:
            return False
        self._forgot_flood_wait = True
        self._flood_waited_requests.clear()  # Telethon's memory (pinned 1.45: a dict, constructor id -> due)
        return True

    async def _call(self, sender, request, ordered=False, flood_sleep_threshold=None):
        threshold = self.flood_sleep_threshold if flood_sleep_threshold is None else flood_sleep_threshold
        for one in request if utils.is_list_like(request) else [request]:
            if not self._answered_from_memory(one, threshold):
                self.requests[type(one).__name__] += 1
        return await super()._call(sender, request, ordered=ordered, flood_sleep_threshold=flood_sleep_threshold)

    def _answered_from_memory(self, request: Any, threshold: int) -> bool:
        """Whether Telethon will raise a FloodWait it remembers for this request without sending it
        (pinned Telethon 1.45: a wait of more than 3 s and above the sleep threshold)."""
        due = self._flood_waited_requests.get(request.CONSTRUCTOR_ID)
        return due is not None and round(due - time.time()) > max(3, threshold)

    def transport_problems(self, channel_id: int) -> list[Skip]:
        """What the transport could not read for this channel (the archive's undecodable lines)."""
        return []


def request_kind(type_name: str) -> str:
    """A request's type as a metric label: ``GetPeerDialogsRequest`` -> ``get_peer_dialogs``."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", type_name.removesuffix("Request")).lower()


def make_client(*, api_id: str | int | None, api_hash: str | None, extra: dict[str, Any],
                as_of: datetime | None = None, flood_sleep_threshold: int = 60) -> PipelineClient:
    """Client for the ``telegram_default`` connection (login=api_id, password=api_hash).

    Extra ``archive`` (a path) selects the archive transport; otherwise extra ``session``
    must hold a ``StringSession`` made once with ``python -m include.album login``.
    """
    if extra.get("archive"):
        from include.album.source.archive import ArchiveTelegramClient

        flood_waits = {int(k): int(v) for k, v in (extra.get("flood_waits") or {}).items()}
        not_joined = {int(c) for c in extra.get("not_joined") or ()}
        return ArchiveTelegramClient(Path(extra["archive"]), as_of=as_of, flood_waits=flood_waits,
                                     not_joined=not_joined, flood_sleep_threshold=flood_sleep_threshold)
    session = extra.get("session")
    if not session or not api_id or not api_hash:
        raise ValueError(
            "telegram connection needs login=api_id, password=api_hash and extra.session "
            "(run `python -m include.album login` once to create the session string), "
            "or extra.archive=<path> for the offline archive transport"
        )
    # Bounded: a request is retried 5 times, a lost connection re-established 5 times, each
    # attempt times out after 30 s; then the task fails and Airflow's retries take over.
    return PipelineClient(StringSession(session), int(api_id), api_hash,
                          flood_sleep_threshold=flood_sleep_threshold, receive_updates=False,
                          request_retries=5, connection_retries=5, retry_delay=2, timeout=30)


def input_peer(channel: Channel) -> types.InputPeerChannel:
    # Stored id + access_hash: resolving usernames every run gets accounts flood-banned.
    return types.InputPeerChannel(channel.id, channel.access_hash)


# -- which channels changed ---------------------------------------------------------------

# Peers per messages.getPeerDialogs call. Telegram documents no cap; 100 keeps an answer (one
# dialog and one message per channel) small, and 1,000 channels cost 10 requests.
PEER_DIALOGS_BATCH = 100
# What Telegram answers for a peer the account's dialogs do not hold (not joined, left, banned).
_NOT_IN_DIALOGS = (errors.ChannelPrivateError, errors.ChannelInvalidError, errors.PeerIdInvalidError)


@dataclass
class NewestMessages:
    """What Telegram said each channel's newest message id is (0: the channel has none)."""

    newest: dict[int, int] = field(default_factory=dict)
    in_dialogs: dict[int, bool] = field(default_factory=dict)  # False: read with a probe of its own
    failed: dict[int, Exception] = field(default_factory=dict)  # not even a probe could read these
    flood_wait_seconds: int | None = None  # a FloodWait stopped the asking: the rest are left for later


async def newest_message_ids(client: TelegramClient, channels: Sequence[Channel]) -> NewestMessages:
    """Ask Telegram for the newest message id of each channel, in as few requests as it takes.

    Channels in the account's dialogs cost one ``messages.getPeerDialogs`` per
    ``PEER_DIALOGS_BATCH`` of them (each dialog carries its ``top_message``). Telegram refuses a
    whole batch when one peer is not in the dialogs (a public channel the account reads without
    having joined it, or one it lost access to): the batch is split in halves until those peers
    stand alone, and each is then probed with a one-message ``GetHistory``. Channels already
    known to be outside the dialogs (``in_dialogs`` false) go straight to the probe.
    """
    found = NewestMessages()
    asked = [c for c in channels if c.in_dialogs is not False]
    outside = [c for c in channels if c.in_dialogs is False]
    try:
        for start in range(0, len(asked), PEER_DIALOGS_BATCH):
            outside += await _dialog_tops(client, asked[start:start + PEER_DIALOGS_BATCH], found)
        for channel in outside:
            found.in_dialogs[channel.id] = False
            try:
                newest = await client.get_messages(input_peer(channel), limit=1)
            except errors.FloodWaitError:
                raise
            except errors.RPCError as exc:
                found.failed[channel.id] = exc
                continue
            found.newest[channel.id] = newest[0].id if newest else 0
    except errors.FloodWaitError as exc:
        found.flood_wait_seconds = exc.seconds
    return found


async def _dialog_tops(client: TelegramClient, batch: Sequence[Channel], found: NewestMessages) -> list[Channel]:
    """The newest message ids of ``batch`` from the account's dialogs; returns the channels they do not hold."""
    request = functions.messages.GetPeerDialogsRequest(peers=[types.InputDialogPeer(input_peer(c)) for c in batch])
    try:
        answer = await client(request)
    except _NOT_IN_DIALOGS:
        if len(batch) == 1:
            return list(batch)
        half = len(batch) // 2
        return await _dialog_tops(client, batch[:half], found) + await _dialog_tops(client, batch[half:], found)
    for dialog in answer.dialogs:
        if isinstance(dialog.peer, types.PeerChannel):
            found.newest[dialog.peer.channel_id] = dialog.top_message
            found.in_dialogs[dialog.peer.channel_id] = True
    return [c for c in batch if c.id not in found.newest]


# -- reading messages ------------------------------------------------------------------


def _largest_photo_size(photo: types.Photo) -> tuple[int | None, int | None, int | None]:
    best = (None, None, None)
    for size in photo.sizes or []:
        if isinstance(size, types.PhotoSize):
            candidate = (size.w, size.h, size.size)
        elif isinstance(size, types.PhotoSizeProgressive):
            candidate = (size.w, size.h, max(size.sizes or [0]))
        else:
            continue
        if best[2] is None or (candidate[2] or 0) > best[2]:
            best = candidate
    return best


def media_ref(message: Any) -> MediaRef | None:
    """Describe a message's media without downloading it (None for text-only messages)."""
    media = getattr(message, "media", None)
    if media is None or isinstance(media, types.MessageMediaEmpty):
        return None
    if isinstance(media, types.MessageMediaPhoto):
        photo = media.photo
        if not isinstance(photo, types.Photo):
            return MediaRef(kind="photo")  # expired/self-destructed photo: nothing to fetch
        width, height, size = _largest_photo_size(photo)
        return MediaRef(kind="photo", file_id=photo.id, mime="image/jpeg", size=size, width=width, height=height)
    if isinstance(media, types.MessageMediaDocument):
        document = media.document
        if not isinstance(document, types.Document):
            return MediaRef(kind="document")
        kind, width, height, file_name = "document", None, None, None
        attributes = document.attributes or []
        for attribute in attributes:
            if isinstance(attribute, types.DocumentAttributeFilename):
                file_name = attribute.file_name
            elif isinstance(attribute, (types.DocumentAttributeVideo, types.DocumentAttributeImageSize)):
                width, height = attribute.w, attribute.h
        if any(isinstance(a, types.DocumentAttributeAnimated) for a in attributes):
            kind = "gif"
        elif any(isinstance(a, types.DocumentAttributeSticker) for a in attributes):
            kind = "sticker"
        elif any(isinstance(a, types.DocumentAttributeVideo) for a in attributes):
            kind = "video"
        elif any(isinstance(a, types.DocumentAttributeAudio) and a.voice for a in attributes):
            kind = "voice"
        elif any(isinstance(a, types.DocumentAttributeAudio) for a in attributes):
            kind = "audio"
        return MediaRef(kind=kind, file_id=document.id, mime=clean_mime(document.mime_type),
                        size=document.size, width=width, height=height, file_name=file_name,
                        has_thumb=bool(document.thumbs))
    kinds = {
        types.MessageMediaWebPage: "webpage", types.MessageMediaPoll: "poll", types.MessageMediaGeo: "geo",
        types.MessageMediaGeoLive: "geo", types.MessageMediaVenue: "geo", types.MessageMediaContact: "contact",
    }
    return MediaRef(kind=kinds.get(type(media), "other"))


# A MIME type as S3 (an HTTP header) and Postgres can carry it: printable ASCII, at most
# 255 characters (RFC 6838 caps type and subtype at 127 each).
_MIME_PATTERN = re.compile(r"[\x21-\x7e]+/[\x20-\x7e]+")
_MIME_MAX = 255
OCTET_STREAM = "application/octet-stream"


def clean_mime(mime: str | None) -> str:
    """The sender's MIME type, or ``application/octet-stream`` when it is missing or not one.

    The uploader's client chooses it: a CR/LF breaks the S3 PUT header and a NUL the Postgres
    insert, and either would fail the channel's ingest on every run.
    """
    if mime and len(mime) <= _MIME_MAX and _MIME_PATTERN.fullmatch(mime):
        return mime
    return OCTET_STREAM


def _raw_text(message: Any) -> str:
    text = getattr(message, "message", None) or ""
    if not text and isinstance(getattr(message, "media", None), types.MessageMediaPoll):
        question = message.media.poll.question
        text = getattr(question, "text", question) or ""
    return text


def message_text(message: Any) -> str:
    """The text (a poll's question when it has none), with NUL as U+FFFD: Postgres text cannot hold NUL."""
    return _raw_text(message).replace("\x00", "\ufffd")


def to_post(channel_id: int, message: types.Message) -> Post:
    return Post(
        channel_id=channel_id,
        message_id=message.id,
        grouped_id=message.grouped_id,
        text=message_text(message),
        posted_at=message.date,
        edited_at=message.edit_date,
        media=media_ref(message),
    )


def read_messages(channel_id: int, messages: Sequence[Any]) -> tuple[list[tuple[Post, Any]], list[Skip]]:
    """Split pulled messages into posts (with their Telethon message) and recorded skips."""
    posts, skips = [], []
    for message in messages:
        if isinstance(message, types.MessageService):
            action = type(message.action).__name__
            skips.append(Skip(channel_id, f"message:{message.id}", "service_message",
                              f"channel {channel_id} message {message.id} is a service message ({action}); "
                              "service messages are not stored as posts"))
        elif isinstance(message, types.Message):
            posts.append((to_post(channel_id, message), message))
            skips.extend(altered(channel_id, message))
    return posts, skips


def altered(channel_id: int, message: types.Message) -> list[Skip]:
    """What of a stored post was changed to be storable: recorded, so nothing is altered silently."""
    where = f"channel {channel_id} message {message.id}"
    skips = []
    nuls = _raw_text(message).count("\x00")
    if nuls:
        skips.append(Skip(channel_id, f"message:{message.id}", "text_nul_replaced",
                          f"{where}: its text holds {nuls} NUL character(s), which Postgres text cannot store; "
                          "stored with U+FFFD in their place"))
    document = getattr(getattr(message, "media", None), "document", None)
    mime = document.mime_type if isinstance(document, types.Document) else None
    if mime and clean_mime(mime) != mime:
        skips.append(Skip(channel_id, f"message:{message.id}", "invalid_mime_type",
                          f"{where}: document {document.id} has the MIME type {mime[:100]!r}, which is "
                          f"not one (printable ASCII type/subtype, at most {_MIME_MAX} characters); "
                          f"stored as {OCTET_STREAM}"))
    return skips


def file_extension(mime: str | None, file_name: str | None = None) -> str:
    """Extension for the S3 key: from the MIME type, else the file name, else ``bin``."""
    overrides = {"image/jpeg": "jpg", "video/mp4": "mp4", "application/pdf": "pdf", "image/webp": "webp",
                 "audio/ogg": "ogg", "video/quicktime": "mov", "audio/mpeg": "mp3", "application/x-tgsticker": "tgs"}
    if mime in overrides:
        return overrides[mime]
    guessed = mimetypes.guess_extension(mime or "") if mime else None
    if guessed:
        return guessed.lstrip(".")
    if file_name and "." in file_name:
        suffix = file_name.rsplit(".", 1)[1].lower()
        if suffix.isalnum() and len(suffix) <= 8:
            return suffix
    return "bin"


# -- pulling ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PullWindow:
    """A backfill run's data interval: messages dated in [start, end)."""

    start: datetime
    end: datetime


@dataclass
class Pull:
    messages: list[Any] = field(default_factory=list)
    flood_wait_seconds: int | None = None
    covered_to: int | None = None  # every id up to this one was asked for (those not returned are gone)


async def _album_edge(client: TelegramClient, peer: Any, edge: Any, *, newer: bool) -> list[Any]:
    """Confirm the members of an album cut by the pull : fetch the ids beyond the edge.

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
                       max_messages: int) -> Pull:
    """Pull one channel: above its high-water mark, or a backfill window by date.

    A new channel (mark 0) starts with its newest ``max_messages``; older history is what
    ``airflow backfill create`` is for. When Telegram has said which message is the channel's
    newest (``channel.top_message``), exactly the ids above the mark up to it are asked for
    (``channels.getMessages``, 100 ids a request): one request for a window's few messages, and
    none for album members beyond the newest message, which do not exist yet. A FloodWait
    longer than Telethon's sleep threshold stops the pull: what arrived before it is kept and
    ``flood_wait_seconds`` is set.
    """
    peer = input_peer(channel)
    pull = Pull()
    try:
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
            wanted = list(range(channel.hwm + 1, last + 1))
            pull.messages = [m for m in await client.get_messages(peer, ids=wanted) if m is not None]
            pull.covered_to = last
        else:
            async for message in client.iter_messages(peer, min_id=channel.hwm, reverse=True, limit=max_messages):
                pull.messages.append(message)
        if pull.messages:
            if window is not None or channel.hwm == 0:
                pull.messages[:0] = await _album_edge(client, peer, pull.messages[0], newer=False)
            newest_known = window is None and channel.top_message is not None
            if not (newest_known and pull.messages[-1].id >= channel.top_message):
                pull.messages.extend(await _album_edge(client, peer, pull.messages[-1], newer=True))
    except errors.FloodWaitError as exc:
        pull.flood_wait_seconds = exc.seconds
        if window is None and channel.hwm == 0:
            pull.messages = []  # newest-first partial pull: retry it whole later
    unique = {m.id: m for m in pull.messages}
    pull.messages = sorted(unique.values(), key=lambda m: m.id)
    return pull


async def download(client: TelegramClient, message: Any, *, thumb: bool = False) -> bytes | None:
    """Media bytes of a message (the video preview with ``thumb=True``)."""
    if thumb:
        return await client.download_media(message, file=bytes, thumb=-1)
    return await client.download_media(message, file=bytes)
