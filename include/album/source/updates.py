"""Telegram's updates, heard by a client that listens: which subscribed channels just posted.

The pulling tasks never listen (``PipelineClient.connect``). The listener is a second client,
with a session of its own (one session used from two places at once dies: AUTH_KEY_DUPLICATED),
whose updates go through Telethon's own handling to ``Listening``'s callbacks. ``Debouncer``
holds a channel's sightings until its album's items have arrived; what leaves is a ``Hint``: a
channel and its newest message id, never a message. Hints only say where to look; the marks
stay the truth: a pull fetches every id between a channel's mark and its newest (the messages
the listener heard are kept in Postgres, and the pull takes those instead of asking again).

That is why the listener asks Telegram nothing of a channel's own (``HintsMessageBox``), where
Telethon would ask ``getChannelDifference`` (one request per channel each time):

* of every channel silent for 15 minutes (about 4 requests an hour per channel): dropped, the
  change check of every scheduled run (one request per 100 channels) catches what no update
  announced;
* when an update's ``pts`` shows a gap (updates lost): the update that shows it names the
  channel's newest message, and the pull fetches what lies below it: a hint as it is;
* when Telegram says "too long" (``updateChannelTooLong``: too many updates to send, or a
  channel that posted while the listener was away, in the account's difference after a
  reconnect): the channel's newest id is not in it, so those channels are collected and their
  newest ids asked for together, one ``messages.getPeerDialogs`` per 100 channels (the listener,
  ``steps.listener``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from telethon import TelegramClient, events, types
from telethon._updates import ChannelState, Entity, EntityType, SessionState
from telethon._updates.messagebox import ENTRY_ACCOUNT, ENTRY_SECRET, MessageBox, PtsInfo

from include.album.source.client import PipelineClient


@dataclass(frozen=True)
class Hint:
    """A channel posted: its newest message id as the update said (a lower bound of the truth)."""

    channel_id: int
    newest: int


@dataclass
class _Sighting:
    newest: int
    first_seen: float
    last_seen: float
    grouped: bool  # the newest message is an album's item: more items may follow


class Debouncer:
    """Holds each channel's new messages until it has been quiet for a while, so that an album's
    items, which arrive one message at a time over a few seconds, make one hint.

    A channel is due ``quiet`` seconds after its last message, ``album_quiet`` after it when that
    message is an album item, and at the latest ``max_hold`` seconds after its first: a channel
    posting without pause still gets a hint that often (an album cut by it is completed by the
    pull, which confirms an album's members and extends it later).
    """

    def __init__(self, *, quiet: float = 1.0, album_quiet: float = 5.0, max_hold: float = 20.0):
        self.quiet, self.album_quiet, self.max_hold = quiet, album_quiet, max_hold
        self._held: dict[int, _Sighting] = {}

    def saw(self, channel_id: int, message_id: int, grouped: bool, now: float) -> None:
        held = self._held.get(channel_id)
        if held is None:
            self._held[channel_id] = _Sighting(message_id, now, now, grouped)
        elif message_id >= held.newest:
            held.newest, held.last_seen, held.grouped = message_id, now, grouped
        else:  # an older message arriving late (a gap filled): the channel is not quiet yet
            held.last_seen = now

    def _due_at(self, held: _Sighting) -> float:
        quiet = self.album_quiet if held.grouped else self.quiet
        return min(held.last_seen + quiet, held.first_seen + self.max_hold)

    def due(self, now: float) -> list[Hint]:
        """The channels due now, as hints (in channel order); they are no longer held."""
        ready = sorted(channel_id for channel_id, held in self._held.items() if self._due_at(held) <= now)
        return [Hint(channel_id, self._held.pop(channel_id).newest) for channel_id in ready]

    def next_due(self) -> float:
        """When the next channel is due (``math.inf``: none is held)."""
        return min((self._due_at(held) for held in self._held.values()), default=math.inf)

    def __len__(self) -> int:
        return len(self._held)


class HintsMessageBox(MessageBox):
    """Telethon's update state, asking nothing of a channel's own (module doc).

    A channel's deadline never comes (no idle check); an update whose ``pts`` skips some is
    applied as if none were missing (it is the channel's newest message: the hint); an
    ``updateChannelTooLong`` of a channel goes to ``on_too_long(channel_id)`` instead of a
    ``getChannelDifference``. The account's own sequence is Telethon's: its deadline (one
    ``getDifference`` per 15 silent minutes) and gaps, how what a lost connection missed comes
    back (channels that posted meanwhile, as "too long").
    """

    def __init__(self, log: Any, on_too_long: Callable[[int], None]):
        super().__init__(log)
        self.on_too_long = on_too_long

    def check_deadlines(self) -> float:
        for entry, state in self.map.items():
            if entry not in (ENTRY_ACCOUNT, ENTRY_SECRET):
                state.deadline = math.inf
        return super().check_deadlines()

    def apply_pts_info(self, update: Any, *, reset_deadlines: Any) -> Any:
        if isinstance(update, types.UpdateChannelTooLong):
            self.on_too_long(update.channel_id)
            return None
        pts = PtsInfo.from_update(update)
        if pts is not None and isinstance(pts.entry, int) and pts.entry in self.map:
            state = self.map[pts.entry]
            if state.pts + pts.pts_count < pts.pts:  # a gap: what it skipped lies below this message
                state.pts = pts.pts - pts.pts_count
        return super().apply_pts_info(update, reset_deadlines=reset_deadlines)


def update_state(client: TelegramClient) -> dict[str, Any]:
    """The client's update state as JSON (the account's ``pts``/``qts``/``date``/``seq`` and each
    channel's ``pts``), to be kept across restarts: with it, the next connection notices what it
    missed (a gap) instead of starting blind."""
    account, channels = client._message_box.session_state()
    return {"pts": account["pts"], "qts": account["qts"], "date": int(account["date"].timestamp()),
            "seq": account["seq"], "channels": {str(channel_id): pts for channel_id, pts in channels.items()}}


class Listening:
    """What makes a ``PipelineClient`` a listener; mixed into the live and the archive clients.

    For the channels in ``watch``'s set: ``on_message(channel_id, message, new)`` for every
    message Telegram sends (``new`` false: an edit), ``on_deleted(channel_id, message_ids)`` for
    deletions, ``on_too_long(channel_id)`` when Telegram says a channel has more news than it
    sends (its newest message id is to be asked for).
    """

    def listen(self: Any, channels: Mapping[int, int], state: Mapping[str, Any] | None,
               on_message: Callable[[int, Any, bool], None], on_deleted: Callable[[int, list[int]], None],
               on_too_long: Callable[[int], None]) -> None:
        """Before ``connect``: the channels to hear (id -> access_hash), the update state kept
        from an earlier connection (or None), and the callbacks."""
        self.watched = dict(channels)
        self._message_box = HintsMessageBox(self._log["messagebox"], lambda channel_id: (
            on_too_long(channel_id) if channel_id in self.watched else None))
        self._on_message, self._on_deleted = on_message, on_deleted
        if state:
            account = SessionState(0, 0, False, int(state["pts"]), int(state["qts"]), int(state["date"]),
                                   int(state["seq"]), None)
            kept = [ChannelState(int(c), int(pts)) for c, pts in state["channels"].items() if int(c) in self.watched]
            self._message_box.load(account, kept)
        for channel_id, access_hash in self.watched.items():  # the channels Telethon may hear of
            self._mb_entity_cache.put(Entity(EntityType.CHANNEL, channel_id, access_hash))
        self.add_event_handler(self._heard, events.Raw(types=[
            types.UpdateNewChannelMessage, types.UpdateEditChannelMessage, types.UpdateDeleteChannelMessages]))

    def watch(self: Any, channels: Mapping[int, int]) -> None:
        """Change the channels heard (subscriptions come and go while the listener runs)."""
        for channel_id in channels.keys() - self.watched.keys():
            self._mb_entity_cache.put(Entity(EntityType.CHANNEL, channel_id, channels[channel_id]))
        self.watched = dict(channels)

    async def _heard(self: Any, update: Any) -> None:
        if isinstance(update, types.UpdateDeleteChannelMessages):
            if update.channel_id in self.watched:
                self._on_deleted(update.channel_id, list(update.messages))
            return
        message = update.message
        channel_id = getattr(message.peer_id, "channel_id", None)
        if channel_id in self.watched and not isinstance(message, types.MessageEmpty):
            self._on_message(channel_id, message, isinstance(update, types.UpdateNewChannelMessage))


class UpdatesClient(Listening, PipelineClient):
    """The live listener: Telethon's own connection with its update loop running."""

    async def connect(self) -> None:
        # Not PipelineClient.connect, which stops the update loop for the pulling tasks.
        await TelegramClient.connect(self)
