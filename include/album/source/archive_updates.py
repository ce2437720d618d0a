"""The archive transport, listening: Telegram's updates replayed from an archive, offline.

As the clock passes a message's date, ``ArchiveUpdatesClient`` puts Telegram's update for it
(``updateNewChannelMessage`` with the channel's ``pts``) on Telethon's own update queue, where
the live connection's reader would put it, so everything above — Telethon's update loop, its
gap detection, the listener — runs as it does live. A message is "posted" at its date: an
archive whose messages are dated a little in the future replays a channel posting now (the
pulling tasks, as of now, do not see them earlier).

A channel's ``pts`` is the message's rank among the channel's messages (1 for the oldest).
Updates that fall while the client is disconnected are not pushed, as live (Telethon's
reconnection does not fetch them): the account's difference (``getDifference``, its catch-up)
names the channels that posted meanwhile with ``updateChannelTooLong``, as Telegram does.

Faults (``archive.Fault`` error strings of their own, beside Telegram's RPC errors):
``DISCONNECT`` (after ``after`` updates the connection drops), ``GAP`` (the update of a
channel's message after ``after`` of them is lost: the next one shows a gap),
``CHANNEL_TOO_LONG`` (instead of the update of a channel's message after ``after`` of them,
Telegram sends ``updateChannelTooLong``: more news than it sends, ask for it).
"""

from __future__ import annotations

import asyncio
import bisect
import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from telethon import functions, types

from include.album.source.archive import ArchiveSender, ArchiveTelegramClient, Fault
from include.album.source.updates import Listening

log = logging.getLogger(__name__)

PUSH_INTERVAL = 0.2  # seconds between looks at the clock
SELF_USER_ID = 777_000_001  # the archive account's own user
DISCONNECT, GAP, TOO_LONG = "DISCONNECT", "GAP", "CHANNEL_TOO_LONG"
OWN_FAULTS = (DISCONNECT, GAP, TOO_LONG)  # the listening client's faults, not RPC errors


@dataclass
class _Timeline:
    channel: types.Channel
    messages: list[Any]  # every message, oldest first: the one at index i has pts i + 1
    dates: list[datetime]


def _spend(fault: Fault) -> None:
    if fault.times is not None:
        fault.times -= 1


class _ListeningSender(ArchiveSender):
    """``ArchiveSender`` answering what a listening client asks too: its own user and the
    account's difference."""

    def __init__(self, path: Path, *, faults: Sequence[Fault], not_joined: set[int] | frozenset[int]):
        super().__init__(path, faults=[f for f in faults if f.error not in OWN_FAULTS], not_joined=not_joined)
        self._posts: dict[int, tuple[Any, _Timeline]] = {}  # channel -> (the timeline read, its posts)

    def posts(self, channel_id: int) -> _Timeline:
        """The channel's messages oldest first with their dates, built again only when its file
        changed (the push loop asks for every watched channel five times a second)."""
        everything = self.timeline(channel_id)
        held = self._posts.get(channel_id)
        if held is None or held[0] is not everything:
            messages = [m for m in reversed(everything.messages) if isinstance(m, types.Message)]
            held = self._posts[channel_id] = (everything, _Timeline(everything.channel, messages,
                                                                    [m.date for m in messages]))
        return held[1]

    def answer(self, request: Any) -> Any:
        if isinstance(request, functions.users.GetUsersRequest):
            self._inject_fault(request)
            return [types.User(id=SELF_USER_ID, is_self=True, access_hash=1, first_name="archive")]
        if isinstance(request, functions.updates.GetDifferenceRequest):
            self._inject_fault(request)
            return self._difference(request)
        return super().answer(request)

    def _difference(self, request: functions.updates.GetDifferenceRequest) -> Any:
        """The account's difference since ``request.date``: for a broadcast channel that posted
        since, Telegram sends ``updateChannelTooLong`` (its news is to be asked for)."""
        now = datetime.now(UTC)
        posted = []
        for entry in self.manifest["channels"]:
            channel_id = int(entry["id"])
            posts = self.posts(channel_id)
            count = bisect.bisect_right(posts.dates, now)
            if channel_id not in self.not_joined and count and posts.dates[count - 1] > request.date:
                posted.append((posts.channel, count))
        if not posted:
            return types.updates.DifferenceEmpty(date=now, seq=0)
        return types.updates.Difference(
            new_messages=[], new_encrypted_messages=[], users=[], chats=[channel for channel, _ in posted],
            other_updates=[types.UpdateChannelTooLong(channel_id=channel.id, pts=count) for channel, count in posted],
            state=types.updates.State(pts=1, qts=0, date=now, seq=0, unread_count=0))


class ArchiveUpdatesClient(Listening, ArchiveTelegramClient):
    """The listener over an archive: updates pushed as the clock passes each message's date."""

    def __init__(self, path: str | Path, *, faults: Sequence[Fault] = (),
                 not_joined: set[int] | frozenset[int] = frozenset(), conn_id: str = "telegram_updates",
                 flood_sleep_threshold: int = 60):
        super().__init__(path, faults=faults, not_joined=not_joined, conn_id=conn_id,
                         flood_sleep_threshold=flood_sleep_threshold)
        self.archive = _ListeningSender(Path(path), faults=faults, not_joined=not_joined)
        self._connected = False
        self._disconnected: asyncio.Future | None = None
        self._pusher: asyncio.Task | None = None
        self._push_faults = [replace(f) for f in faults if f.error in OWN_FAULTS]
        self._pushed = 0

    @property
    def disconnected(self) -> asyncio.Future:
        if self._disconnected is None:
            self._disconnected = asyncio.get_running_loop().create_future()
        return self._disconnected

    def is_connected(self) -> bool:
        return self._connected

    async def connect(self) -> None:
        """What Telethon's ``connect`` does for a listening client, over the archive: the update
        state asked for when none is kept (``updates.getState``), then its update loop."""
        if self._connected:
            return
        self._disconnected = asyncio.get_running_loop().create_future()
        self._connected = True
        if self._message_box.is_empty():
            self._message_box.set_state(await self(functions.updates.GetStateRequest()))
        self._updates_handle = self.loop.create_task(self._update_loop())
        self._pusher = self.loop.create_task(self._push_loop(datetime.now(UTC)))

    async def disconnect(self) -> None:
        await self._drop()

    async def _drop(self) -> None:
        if not self._connected:
            return
        self._connected = False
        current = asyncio.current_task()
        for task in (self._pusher, self._updates_handle):
            if task is not None and task is not current:
                task.cancel()
        if self._disconnected is not None and not self._disconnected.done():
            self._disconnected.set_result(None)

    async def _push_loop(self, since: datetime) -> None:
        """Push each watched channel's messages dated after ``since``, as the clock passes them."""
        try:
            while self._connected:
                now = datetime.now(UTC)
                for channel_id in sorted(self.watched):
                    if channel_id in self.archive.not_joined:  # no updates from a channel not joined
                        continue
                    posts = self.archive.posts(channel_id)
                    first = bisect.bisect_right(posts.dates, since)
                    last = bisect.bisect_right(posts.dates, now)
                    for index in range(first, last):
                        if not await self._push(posts, index):
                            return
                since = now
                await asyncio.sleep(PUSH_INTERVAL)
        except asyncio.CancelledError:
            pass

    async def _push(self, posts: _Timeline, index: int) -> bool:
        """Push one message's update; False when a fault dropped the connection instead."""
        channel_id = posts.channel.id
        for fault in self._push_faults:
            if fault.error == DISCONNECT and fault.matches(None, set()):
                _spend(fault)
                log.info("archive: the listening connection drops (fault DISCONNECT after %d updates)", self._pushed)
                await self._drop()
                return False
            if fault.error == GAP and fault.matches(None, {channel_id}):
                _spend(fault)
                log.info("archive: the update of channel %s message %s is lost (fault GAP)", channel_id,
                         posts.messages[index].id)
                return True
            if fault.error == TOO_LONG and fault.matches(None, {channel_id}):
                _spend(fault)
                log.info("archive: channel %s message %s comes as 'too long' (fault CHANNEL_TOO_LONG)", channel_id,
                         posts.messages[index].id)
                self._queue(posts, types.UpdateChannelTooLong(channel_id=channel_id, pts=index + 1))
                return True
        self._queue(posts, types.UpdateNewChannelMessage(message=posts.messages[index], pts=index + 1, pts_count=1))
        self._pushed += 1
        return True

    def _queue(self, posts: _Timeline, update: Any) -> None:
        self._updates_queue.put_nowait(types.Updates(updates=[update], users=[], chats=[posts.channel],
                                                     date=datetime.now(UTC), seq=0))
