"""The archive transport (format ``telegram-archive/1``, README "Sources of messages"): real Telethon code, offline.

``ArchiveTelegramClient`` is a ``TelegramClient`` whose ``_call`` sends every request to
an in-process sender, ``ArchiveSender``, that answers from an archive (its format:
``archive_format.py``). Everything above the sender is Telethon's own code:
``iter_messages``, ``get_messages(ids=...)``, ``download_media``, entity handling, the
FloodWait sleep/raise logic and the retries of Telegram's 5xx answers. A refresh over the
archive sees its edits and deletions as a live refresh sees Telegram's answers.

Telegram's own failures are injected with ``Fault`` (``archive_faults.py``). The archive's
edits — later versions of messages, deletions, a renamed channel, channels added — are made
by the development tools (``devtools/archive_edits.py``).

Callers import the transport from here, the format's and the faults' names they use included
(``__all__``).
"""

from __future__ import annotations

import asyncio
import bisect
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from telethon import errors, functions, types
from telethon.extensions import BinaryReader
from telethon.sessions import StringSession

from include.album.domain.models import Skip
from include.album.source.archive_faults import Fault
from include.album.source.archive_format import ArchiveError, ArchiveWriter, decode_message, read_manifest
from include.album.source.client import REQUEST_RETRIES, PipelineClient

__all__ = ["ArchiveError", "ArchiveSender", "ArchiveTelegramClient", "ArchiveWriter", "Fault", "read_manifest"]

log = logging.getLogger(__name__)


def _message_empty(message_id: int) -> Any:
    # Telethon patches types.MessageEmpty with its custom Message; build it the way a server
    # answer would arrive: from the TL bytes of the plain constructor (``__bases__[1]``).
    plain = types.MessageEmpty.__bases__[1](id=message_id)
    return BinaryReader(bytes(plain)).tgread_object()


@dataclass
class _ChannelHistory:
    channel: types.Channel
    messages: list[Any]  # newest first, like Telegram's history
    problems: list[Skip] = field(default_factory=list)
    stamp: tuple[int, int] | None = None  # the file's (mtime, size) when read


class ArchiveSender:
    """Answers Telegram RPCs from an archive, the way Telegram's servers would.

    ``as_of`` hides messages dated later and edits made later (replaying a channel as it was
    at that moment; a deletion line carries no date and applies at any moment); without it, the
    channel is as of now: a message dated in the future is not posted yet (a replayed channel
    posting while the pipeline runs, ``archive_updates``). A channel's file is read again when
    it changes (the development tools append to archives);
    ``faults`` are Telegram's errors to answer instead (``Fault``), in order, the first that
    matches; ``not_joined`` are channels the account reads without having joined them: the
    account's dialogs do not answer for them (``CHANNEL_PRIVATE``, as Telegram does), their
    history does.
    """

    def __init__(self, path: Path, *, as_of: datetime | None = None, faults: Sequence[Fault] = (),
                 not_joined: set[int] | frozenset[int] = frozenset()):
        self.path = Path(path)
        self.manifest = read_manifest(self.path)
        self.as_of = as_of
        self.faults = [replace(fault) for fault in faults]  # each client counts its own
        self.not_joined = frozenset(not_joined)
        self._histories: dict[int, _ChannelHistory] = {}
        self._timelines: dict[int, _ChannelHistory] = {}
        self._answered = False  # whether a request of this connection came already
        self._media_channels: dict[int, int] = {}  # photo/document id -> the channel that posted it

    # -- loading -------------------------------------------------------------------------

    def history(self, channel_id: int) -> _ChannelHistory:
        """The channel as of ``as_of`` (or now)."""
        return self._cached(self._histories, channel_id, self.as_of or datetime.now(UTC))

    def timeline(self, channel_id: int) -> _ChannelHistory:
        """Every message of the channel, those dated in the future included."""
        return self._cached(self._timelines, channel_id, None)

    def _cached(self, cache: dict[int, _ChannelHistory], channel_id: int, as_of: datetime | None) -> _ChannelHistory:
        held = cache.get(channel_id)
        if held is None or held.stamp != self._stamp(channel_id):
            held = cache[channel_id] = self._load(channel_id, as_of)
        return held

    def _file(self, channel_id: int) -> Path:
        return self.path / f"channels/{channel_id}/messages.jsonl"

    def _stamp(self, channel_id: int) -> tuple[int, int] | None:
        try:
            stat = self._file(channel_id).stat()
        except FileNotFoundError:
            return None
        return stat.st_mtime_ns, stat.st_size

    def _channel_entry(self, channel_id: int) -> dict:
        for reread in (False, True):  # a channel added to the archive since it was opened: read it again
            if reread:
                self.manifest = read_manifest(self.path)
            for entry in self.manifest["channels"]:
                if int(entry["id"]) == channel_id:
                    return entry
        raise errors.ChannelInvalidError(request=None)

    def _load(self, channel_id: int, as_of: datetime | None) -> _ChannelHistory:
        entry = self._channel_entry(channel_id)
        stamp = self._stamp(channel_id)
        channel = types.Channel(
            id=channel_id,
            title=entry.get("title") or str(channel_id),
            photo=types.ChatPhotoEmpty(),
            date=None,
            broadcast=True,
            access_hash=int(entry["access_hash"]),
            username=entry.get("username"),
        )
        relative = f"channels/{channel_id}/messages.jsonl"
        file = self._file(channel_id)
        by_id, problems = {}, []
        lines = file.read_text(encoding="utf-8").splitlines() if file.is_file() else []
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                message = decode_message(line)
            except Exception as exc:  # noqa: BLE001 - any undecodable line is recorded, not fatal
                problems.append(Skip(
                    channel_id=channel_id,
                    ref=f"archive:{relative}:{number}",
                    reason="corrupt_archive_line",
                    detail=f"channel {channel_id}: {relative} line {number} is not a telethon message "
                           f"({type(exc).__name__}: {exc}); the message on it was not ingested",
                ))
                continue
            if isinstance(message, types.MessageEmpty):  # deleted from Telegram since recorded
                by_id.pop(message.id, None)
                continue
            version_date = getattr(message, "edit_date", None) or message.date
            if as_of is not None and version_date is not None and version_date > as_of:
                continue
            by_id[message.id] = message  # a later line is a later version (an edit)
            media = getattr(message, "photo", None) or getattr(message, "document", None)
            if media is not None:
                self._media_channels[media.id] = channel_id
        history = sorted(by_id.values(), key=lambda m: m.id, reverse=True)
        return _ChannelHistory(channel=channel, messages=history, problems=problems, stamp=stamp)

    # -- the RPCs ------------------------------------------------------------------------

    def send(self, request: Any, ordered: bool = False) -> asyncio.Future:
        future = asyncio.get_running_loop().create_future()
        try:
            future.set_result(self.answer(request))
        except Exception as exc:  # noqa: BLE001 - the future carries it to Telethon
            future.set_exception(exc)
        return future

    def answer(self, request: Any) -> Any:
        self._inject_fault(request)
        if isinstance(request, functions.messages.GetHistoryRequest):
            return self._get_history(request)
        if isinstance(request, functions.channels.GetMessagesRequest):
            return self._get_messages(request)
        if isinstance(request, functions.messages.GetPeerDialogsRequest):
            return self._get_peer_dialogs(request)
        if isinstance(request, functions.updates.GetStateRequest):  # what Telethon asks to start listening
            return self._state()
        if isinstance(request, functions.upload.GetFileRequest):
            return self._get_file(request)
        if isinstance(request, functions.contacts.ResolveUsernameRequest):
            return self._resolve_username(request)
        if isinstance(request, functions.channels.GetChannelsRequest):
            chats = [self.history(c.channel_id).channel for c in request.id]
            return types.messages.Chats(chats=chats)
        raise errors.RPCError(
            request=request,
            message=f"ARCHIVE_UNSUPPORTED_REQUEST: the archive transport does not answer "
                    f"{type(request).__name__}",
            code=400,
        )

    def _channel_id_of(self, peer: Any, request: Any) -> int:
        channel_id = getattr(peer, "channel_id", None)
        if channel_id is None:
            raise errors.PeerIdInvalidError(request=request)
        return int(channel_id)

    def _slice(self, channel_id: int, messages: list[Any]) -> types.messages.ChannelMessages:
        history = self.history(channel_id)
        return types.messages.ChannelMessages(
            pts=0, count=len(history.messages), messages=messages,
            chats=[history.channel], users=[], topics=[],
        )

    def _inject_fault(self, request: Any) -> None:
        channel_ids = self._channels_of(request)
        first, self._answered = not self._answered, True
        for fault in self.faults:
            if fault.matches(request, channel_ids, first=first):
                fault.raise_for(request)

    def _channels_of(self, request: Any) -> set[int]:
        """The channels a request is about (a download's: the channel whose message carries the file)."""
        if isinstance(request, functions.messages.GetPeerDialogsRequest):
            peers = [dialog.peer for dialog in request.peers]
        else:
            peers = [getattr(request, "peer", None) or getattr(request, "channel", None)]
        found = {int(peer.channel_id) for peer in peers if getattr(peer, "channel_id", None) is not None}
        location = getattr(request, "location", None)
        if getattr(location, "id", None) in self._media_channels:
            found.add(self._media_channels[location.id])
        return found

    def _state(self) -> types.updates.State:
        return types.updates.State(pts=1, qts=0, date=self.as_of or datetime.now(UTC), seq=0, unread_count=0)

    def _get_peer_dialogs(self, request: functions.messages.GetPeerDialogsRequest) -> Any:
        """Each channel's dialog: its newest message (``top_message``) as of ``as_of``. Telegram
        refuses the whole call when one peer is a channel the account has not joined."""
        channel_ids = [self._channel_id_of(dialog.peer, request) for dialog in request.peers]
        if not channel_ids:
            raise errors.InputPeersEmptyError(request=request)
        for channel_id in channel_ids:
            if channel_id in self.not_joined:
                raise errors.ChannelPrivateError(request=request)
        histories = [self.history(channel_id) for channel_id in channel_ids]
        dialogs, messages = [], []
        for channel_id, history in zip(channel_ids, histories, strict=True):
            top = history.messages[0] if history.messages else None
            dialogs.append(types.Dialog(
                peer=types.PeerChannel(channel_id), top_message=top.id if top else 0, read_inbox_max_id=0,
                read_outbox_max_id=0, unread_count=0, unread_mentions_count=0, unread_reactions_count=0,
                unread_poll_votes_count=0, notify_settings=types.PeerNotifySettings(), pts=1))
            if top is not None:
                messages.append(top)
        return types.messages.PeerDialogs(dialogs=dialogs, messages=messages, chats=[h.channel for h in histories],
                                          users=[], state=self._state())

    def _get_history(self, request: functions.messages.GetHistoryRequest) -> Any:
        channel_id = self._channel_id_of(request.peer, request)
        history = self.history(channel_id).messages  # newest first
        # Start at the first message older than offset_id (or offset_date), then shift by
        # add_offset (negative = towards newer messages), take `limit`, filter min/max id.
        if request.offset_id:
            ids_desc = [-m.id for m in history]
            start = bisect.bisect_right(ids_desc, -request.offset_id)
        elif request.offset_date:
            start = next((i for i, m in enumerate(history) if m.date < request.offset_date), len(history))
        else:
            start = 0
        start += request.add_offset or 0
        end = start + max(request.limit, 0)
        start = max(start, 0)
        window = [
            m for m in history[start:max(end, 0)]
            if (not request.min_id or m.id > request.min_id) and (not request.max_id or m.id < request.max_id)
        ]
        return self._slice(channel_id, window)

    def _get_messages(self, request: functions.channels.GetMessagesRequest) -> Any:
        channel_id = self._channel_id_of(request.channel, request)
        by_id = {m.id: m for m in self.history(channel_id).messages}
        answer = []
        for wanted in request.id:
            message_id = getattr(wanted, "id", None)
            answer.append(by_id.get(message_id) or _message_empty(message_id or 0))
        return self._slice(channel_id, answer)

    def _get_file(self, request: functions.upload.GetFileRequest) -> Any:
        location = request.location
        if isinstance(location, (types.InputPhotoFileLocation, types.InputDocumentFileLocation)):
            is_thumb = isinstance(location, types.InputDocumentFileLocation) and bool(location.thumb_size)
            name = f"{location.id}.thumb" if is_thumb else str(location.id)
        else:
            raise errors.LocationInvalidError(request=request)
        file = self.path / "media" / name
        if not file.is_file():
            raise errors.LocationInvalidError(request=request)
        with file.open("rb") as handle:
            handle.seek(request.offset)
            data = handle.read(request.limit)
        return types.upload.File(type=types.storage.FileUnknown(), mtime=0, bytes=data)

    def _resolve_username(self, request: functions.contacts.ResolveUsernameRequest) -> Any:
        for entry in self.manifest["channels"]:
            if (entry.get("username") or "").lower() == request.username.lower():
                channel = self.history(int(entry["id"])).channel
                return types.contacts.ResolvedPeer(
                    peer=types.PeerChannel(channel.id), chats=[channel], users=[]
                )
        raise errors.UsernameNotOccupiedError(request=request)


class ArchiveTelegramClient(PipelineClient):
    """A ``TelegramClient`` that never touches the network: RPCs go to ``ArchiveSender``."""

    def __init__(
        self,
        path: str | Path,
        *,
        as_of: datetime | None = None,
        faults: Sequence[Fault] = (),
        not_joined: set[int] | frozenset[int] = frozenset(),
        flood_sleep_threshold: int = 60,
        conn_id: str = "telegram_default",
    ):
        # Credentials are placeholders: nothing is ever sent anywhere. Telegram's 5xx answers
        # are retried as the live client's (``make_client``), the last error raised.
        super().__init__(StringSession(), api_id=1, api_hash="archive", flood_sleep_threshold=flood_sleep_threshold,
                         request_retries=REQUEST_RETRIES, raise_last_call_error=True, conn_id=conn_id)
        self.archive = ArchiveSender(Path(path), as_of=as_of, faults=faults, not_joined=not_joined)

    async def connect(self) -> None:
        return None  # no network (and, as live, no request: ``PipelineClient.connect``)

    async def disconnect(self) -> None:
        return None

    async def _call(self, sender, request, ordered=False, flood_sleep_threshold=None):
        return await super()._call(self.archive, request, ordered=ordered, flood_sleep_threshold=flood_sleep_threshold)

    def iter_messages(self, *args, wait_time: float | None = 0, **kwargs):
        # Telethon waits 1 s between history requests of pulls over 3,000 messages, to be gentle
        # with Telegram; an archive has no rate limit to respect.
        return super().iter_messages(*args, wait_time=wait_time, **kwargs)

    async def _borrow_exported_sender(self, dc_id):
        return self.archive  # recorded media may name any DC; the archive serves them all

    async def _return_exported_sender(self, sender):
        return None

    def now(self) -> datetime:
        return self.archive.as_of or datetime.now(UTC)

    def transport_problems(self, channel_id: int) -> list[Skip]:
        """Lines of the archive that could not be decoded for this channel."""
        return list(self.archive.history(channel_id).problems)
