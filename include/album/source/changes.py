"""Which channels have new messages: their newest message ids, a few requests for many channels."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from telethon import TelegramClient, errors, functions, types

from include.album.domain.models import Channel
from include.album.source.client import input_peer
from include.album.source.failures import Meaning, Wait, error_name, is_server_error, meaning

# Peers per messages.getPeerDialogs call. Telegram documents no cap; 100 keeps an answer (one
# dialog and one message per channel) small, and 1,000 channels cost 10 requests.
PEER_DIALOGS_BATCH = 100


def _not_in_dialogs(exc: errors.RPCError) -> bool:
    """What Telegram answers for a peer the account's dialogs do not hold (not joined, left, banned)."""
    return meaning(exc) is Meaning.CHANNEL_UNAVAILABLE or error_name(exc) == "PEER_ID_INVALID"


@dataclass
class NewestMessages:
    """What Telegram said each channel's newest message id is (0: the channel has none)."""

    newest: dict[int, int] = field(default_factory=dict)
    in_dialogs: dict[int, bool] = field(default_factory=dict)  # False: read with a probe of its own
    failed: dict[int, Exception] = field(default_factory=dict)  # not even a probe could read these
    labels: dict[int, tuple[str | None, str]] = field(default_factory=dict)  # (username, title) Telegram shows
    wait: Wait | None = None  # a wait Telegram asked for stopped the asking: the rest are left for later
    telegram_error: Exception | None = None  # Telegram kept failing (5xx, timeouts): the rest are left for later


async def newest_message_ids(client: TelegramClient, channels: Sequence[Channel]) -> NewestMessages:
    """Ask Telegram for the newest message id of each channel, in as few requests as it takes.

    Channels in the account's dialogs cost one ``messages.getPeerDialogs`` per
    ``PEER_DIALOGS_BATCH`` of them (each dialog carries its ``top_message``). Telegram refuses a
    whole batch when one peer is not in the dialogs (a public channel the account reads without
    having joined it, or one it lost access to): the batch is split in halves until those peers
    stand alone, and each is then probed with a one-message ``GetHistory``. Channels already
    known to be outside the dialogs (``in_dialogs`` false) go straight to the probe. The
    answers carry each channel's username and title (``labels``): renames cost no request.
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
            except errors.RPCError as exc:
                if meaning(exc) in (Meaning.WAIT, Meaning.SESSION_UNUSABLE) or is_server_error(exc):
                    raise
                found.failed[channel.id] = exc
                continue
            found.newest[channel.id] = newest[0].id if newest else 0
            if newest and isinstance(newest[0].chat, types.Channel):
                _label(found, newest[0].chat)
    except errors.RPCError as exc:
        if meaning(exc) is Meaning.WAIT:
            found.wait = Wait.of(exc)
        elif is_server_error(exc):
            found.telegram_error = exc
        else:
            raise
    return found


def _label(found: NewestMessages, chat: types.Channel) -> None:
    # A channel with collectible usernames has ``username`` None and its names in ``usernames``.
    username = chat.username or next((u.username for u in chat.usernames or () if u.active), None)
    found.labels[chat.id] = (username, chat.title)


async def _dialog_tops(client: TelegramClient, batch: Sequence[Channel], found: NewestMessages) -> list[Channel]:
    """The newest message ids of ``batch`` from the account's dialogs; returns the channels they do not hold."""
    request = functions.messages.GetPeerDialogsRequest(peers=[types.InputDialogPeer(input_peer(c)) for c in batch])
    try:
        answer = await client(request)
    except errors.RPCError as exc:
        if not _not_in_dialogs(exc):
            raise
        if len(batch) == 1:
            return list(batch)
        half = len(batch) // 2
        return await _dialog_tops(client, batch[:half], found) + await _dialog_tops(client, batch[half:], found)
    for dialog in answer.dialogs:
        if isinstance(dialog.peer, types.PeerChannel):
            found.newest[dialog.peer.channel_id] = dialog.top_message
            found.in_dialogs[dialog.peer.channel_id] = True
    for chat in answer.chats:
        if isinstance(chat, types.Channel):
            _label(found, chat)
    return [c for c in batch if c.id not in found.newest]
