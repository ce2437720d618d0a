"""Telegram's updates, heard by a client that listens: which subscribed channels just posted.

The pulling tasks never listen (``PipelineClient.connect``). The listener is a second client,
with a session of its own (one session used from two places at once dies: AUTH_KEY_DUPLICATED),
whose updates go through Telethon's own handling — its per-channel ``pts``, gap detection and
``getChannelDifference`` — to ``Listening.on_new_message``. ``Debouncer`` holds a channel's
sightings until its album's items have arrived; what leaves is a ``Hint``: a channel and its
newest message id, never a message. Hints only say where to look; the marks stay the truth.

Two of Telethon's habits are changed here, both to keep the listener within what the cron
change check costs:

* it asks ``getChannelDifference`` of every channel that stays silent for 15 minutes (about
  4 requests an hour per channel); the listener drops those idle checks and keeps the ones a
  gap calls for (``GapsOnlyMessageBox``): the change check of every run (one request per 100
  channels) already catches what no update announced;
* a gap Telegram answers with "too long" advances the channel's ``pts`` and returns nothing: the
  listener turns that answer into a hint for the channel, so the pull fetches what it skipped.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from telethon import TelegramClient, events, types
from telethon._updates import ChannelState, Entity, EntityType, SessionState
from telethon._updates.messagebox import ENTRY_ACCOUNT, ENTRY_SECRET, MessageBox

from include.album.source.client import PipelineClient

log = logging.getLogger(__name__)


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


class GapsOnlyMessageBox(MessageBox):
    """Telethon's update state, without its idle check of every channel.

    Telethon asks ``getChannelDifference`` of each channel it tracks that has sent nothing for
    15 minutes; with hundreds of channels that is more requests than the whole cron change
    check. Here a channel's own deadline never comes: its difference is fetched only when a gap
    shows (an update whose ``pts`` skips some, ``updateChannelTooLong``). The account's deadline
    (one ``getDifference`` per 15 silent minutes) is kept: it is how a lost connection's missed
    account updates come back.
    """

    def check_deadlines(self) -> float:
        for entry, state in self.map.items():
            if entry not in (ENTRY_ACCOUNT, ENTRY_SECRET):
                state.deadline = math.inf
        return super().check_deadlines()


def update_state(client: TelegramClient) -> dict[str, Any]:
    """The client's update state as JSON (the account's ``pts``/``qts``/``date``/``seq`` and each
    channel's ``pts``), to be kept across restarts: with it, the next connection notices what it
    missed (a gap) instead of starting blind."""
    account, channels = client._message_box.session_state()
    return {"pts": account["pts"], "qts": account["qts"], "date": int(account["date"].timestamp()),
            "seq": account["seq"], "channels": {str(channel_id): pts for channel_id, pts in channels.items()}}


class Listening:
    """What makes a ``PipelineClient`` a listener; mixed into the live and the archive clients.

    ``on_new_message(channel_id, message_id, grouped)`` is called for every new message of a
    channel in ``watch``'s set, whether Telegram pushed it or a difference brought it;
    ``on_gap(channel_id, newest)`` when Telegram answers a channel's gap with "too long".
    """

    def listen(self: Any, channels: Mapping[int, int], state: Mapping[str, Any] | None,
               on_new_message: Callable[[int, int, bool], None], on_gap: Callable[[int, int], None]) -> None:
        """Before ``connect``: the channels to hear (id -> access_hash), the update state kept
        from an earlier connection (or None), and the callbacks."""
        self._message_box = GapsOnlyMessageBox(self._log["messagebox"])
        self.watched = dict(channels)
        self._on_new_message, self._on_gap = on_new_message, on_gap
        if state:
            account = SessionState(0, 0, False, int(state["pts"]), int(state["qts"]), int(state["date"]),
                                   int(state["seq"]), None)
            kept = [ChannelState(int(c), int(pts)) for c, pts in state["channels"].items() if int(c) in self.watched]
            self._message_box.load(account, kept)
        for channel_id, access_hash in self.watched.items():  # what getChannelDifference needs to ask
            self._mb_entity_cache.put(Entity(EntityType.CHANNEL, channel_id, access_hash))
        self.add_event_handler(self._heard, events.Raw(types=[types.UpdateNewChannelMessage]))

    def watch(self: Any, channels: Mapping[int, int]) -> None:
        """Change the channels heard (subscriptions come and go while the listener runs)."""
        for channel_id in channels.keys() - self.watched.keys():
            self._mb_entity_cache.put(Entity(EntityType.CHANNEL, channel_id, channels[channel_id]))
        self.watched = dict(channels)

    async def _heard(self: Any, update: types.UpdateNewChannelMessage) -> None:
        message = update.message
        channel_id = getattr(message.peer_id, "channel_id", None)
        if channel_id in self.watched and isinstance(message, types.Message):
            self._on_new_message(channel_id, message.id, message.grouped_id is not None)

    async def _call(self: Any, sender, request, ordered=False, flood_sleep_threshold=None):
        answer = await super()._call(sender, request, ordered=ordered, flood_sleep_threshold=flood_sleep_threshold)
        if isinstance(answer, types.updates.ChannelDifferenceTooLong):
            channel_id = request.channel.channel_id
            if channel_id in self.watched:
                log.warning("Telegram answered channel %s's gap with 'too long' (its updates skipped); the channel is "
                            "pulled", channel_id)
                self._on_gap(channel_id, answer.dialog.top_message)
        return answer


class UpdatesClient(Listening, PipelineClient):
    """The live listener: Telethon's own connection with its update loop running."""

    async def connect(self) -> None:
        # Not PipelineClient.connect, which stops the update loop for the pulling tasks.
        await TelegramClient.connect(self)
