"""The Telethon client every task uses, live or archive: it counts its requests and connects lazily.

Live and archive share every line of ``source``: the archive transport only replaces the
network below ``TelegramClient._call`` (see ``archive.py``).
"""

from __future__ import annotations

import logging
import re
import time
from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from telethon import TelegramClient, errors, functions, types, utils
from telethon._updates import SessionState
from telethon.tl.alltlobjects import tlobjects

from include.album.domain.models import Channel, Skip
from include.album.source.failures import Meaning, Wait, meaning

log = logging.getLogger(__name__)

# Telegram's 5xx answers and timeouts are retried this many times by Telethon (2 s apart),
# then the last error is raised and the channel is left for the next run.
REQUEST_RETRIES = 5


def request_name(request: Any) -> str:
    """A request's type as Telethon's functions name it: ``upload.GetFileRequest``
    (``GetMessagesRequest`` alone would be ambiguous: ``messages.`` and ``channels.`` both have one)."""
    cls = request if isinstance(request, type) else type(request)
    return f"{cls.__module__.rsplit('.', 1)[-1]}.{cls.__name__}"


_CONSTRUCTORS = {request_name(cls): cls.CONSTRUCTOR_ID for cls in tlobjects.values()
                 if ".functions" in cls.__module__}
DOWNLOAD = request_name(functions.upload.GetFileRequest)
CHANGE_CHECK = request_name(functions.messages.GetPeerDialogsRequest)
# Waits on these concern the session, whatever channel they were met for: downloads (Telegram
# paces an account's file downloads: FLOOD_PREMIUM_WAIT) and the change check (one call for
# many channels). A wait on reading a channel's messages may be that channel's alone
# (``forget_flood_wait``).
SESSION_WIDE = frozenset({DOWNLOAD, CHANGE_CHECK})
CHANNEL_READS = frozenset({request_name(functions.messages.GetHistoryRequest),
                           request_name(functions.channels.GetMessagesRequest)})


class PipelineClient(TelegramClient):
    """The client of every task, live or archive: counts the requests it makes, by type.

    Telegram's limits are per session and publish no numbers, so the requests a window costs
    are counted (``requests``) and reported by the tasks (metric ``telegram_requests_total``).
    They are counted where they leave for Telegram: each of Telethon's retries of a 5xx answer
    is one more; a request Telethon answers itself, because it falls inside a FloodWait it
    remembers, is none.
    """

    def __init__(self, *args: Any, conn_id: str = "telegram_default", **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.conn_id = conn_id
        self.requests: Counter[str] = Counter()
        self.waits: dict[str, Wait] = {}  # the waits Telegram gave this client, by request (``request_name``)
        self._respected: dict[str, Wait] = {}  # the waits given earlier that this client obeys
        self._open = False
        self._forgot_flood_wait = False
        self._reads_wait_is_the_sessions = False

    async def open(self) -> None:
        """Connect, once: callers open when they first need Telegram, so a task with nothing to
        ask costs no connection. Never prompts (a task must not log in), and asks nothing: a
        session Telegram refuses fails the first real request (callers raise ``SessionUnusable``
        on it), so no request is spent only to check it.
        """
        if self._open:
            return
        await self.connect()
        self._authorized = True  # what Telethon's is_user_authorized() would otherwise ask (GetState)
        self._open = True

    async def connect(self) -> None:
        """Connect without the requests Telethon makes for a client that listens for updates.

        With a ``StringSession`` (no stored update state) Telethon's ``connect`` asks for the
        account (``users.getUsers``), then ``updates.getState`` and ``updates.getDifference`` to
        start its update loop, on every connection. Tasks never listen (``receive_updates=False``):
        a stand-in update state keeps Telethon from asking, and the update loop is stopped.
        """
        if self._message_box.is_empty():
            self._message_box.load(SessionState(0, 0, False, pts=1, qts=0, date=0, seq=0, takeout_id=None), [])
        await super().connect()
        if self._updates_handle is not None:
            self._updates_handle.cancel()

    def now(self) -> datetime:
        """The moment Telegram's answers are as of (the archive transport may replay an earlier one)."""
        return datetime.now(UTC)

    async def close(self) -> None:
        if self._open:
            await self.disconnect()
            self._open = False

    def forget_flood_wait(self) -> bool:
        """After a FloodWait deferred one channel, let the next channel ask Telegram itself, once.

        Telethon remembers a FloodWait per request type and answers later requests of that type
        itself until it ends, so one channel's wait would defer every channel after it on this
        connection. A wait on reading messages may be that one channel's: the next channel asks
        Telegram. If Telegram answers it with a FloodWait too, the wait is the session's and the
        memory stands: the remaining channels are deferred without a request, and the wait is
        kept for later runs (``session_waits``). Waits on downloads and on the change check are
        the session's from the start and never forgotten. Returns whether it forgot.
        """
        if self._forgot_flood_wait:
            self._reads_wait_is_the_sessions = True
            return False
        self._forgot_flood_wait = True
        for name in CHANNEL_READS - set(self._respected):  # (a stored wait is the session's already)
            self._flood_waited_requests.pop(_CONSTRUCTORS[name], None)  # Telethon's memory: constructor -> due
        return True

    def respect(self, waits: Mapping[str, Wait], now: datetime | None = None) -> None:
        """Obey waits given earlier (stored by another run or DAG): until each ends, Telethon
        answers requests of its type itself (a ``FloodWaitError`` for the time left, or a sleep
        under the threshold), without asking Telegram."""
        now = now or datetime.now(UTC)
        for name, wait in waits.items():
            left = (wait.until - now).total_seconds()
            if left > 0 and name in _CONSTRUCTORS:
                self._flood_waited_requests[_CONSTRUCTORS[name]] = time.time() + left
                self._respected[name] = wait

    def wait_on(self, request: str) -> Wait | None:
        """The wait Telegram gave for ``request``, to this client or to an earlier one (the one
        Telethon's own ``FloodWaitError`` stands for when it answers from its memory)."""
        return self.waits.get(request) or self._respected.get(request)

    def keep_wait(self, request: str, wait: Wait) -> None:
        """Keep ``wait`` as the session's for ``request`` (the change check keeps a wait met by any
        of its requests: until it ends, no run asks which channels changed)."""
        self.waits[request] = wait

    def session_waits(self) -> dict[str, Wait]:
        """The waits Telegram gave that concern the whole session: what later runs must obey."""
        return {name: wait for name, wait in self.waits.items()
                if name in SESSION_WIDE or (name in CHANNEL_READS and self._reads_wait_is_the_sessions)}

    async def _call(self, sender, request, ordered=False, flood_sleep_threshold=None):
        sent = self.requests.total()
        try:
            return await super()._call(_Counted(sender, self.requests), request, ordered=ordered,
                                       flood_sleep_threshold=flood_sleep_threshold)
        except errors.RPCError as exc:
            # A wait Telegram gave (not one Telethon answered from its memory without asking),
            # counted from the moment it was given.
            given = self.requests.total() > sent
            if given and meaning(exc) is Meaning.WAIT and not utils.is_list_like(request):
                self.waits[request_name(request)] = Wait.of(exc)
            raise

    def transport_problems(self, channel_id: int) -> list[Skip]:
        """What the transport could not read for this channel (the archive's undecodable lines)."""
        return []


class _Counted:
    """A sender that counts the requests reaching it, by type (what Telegram sees)."""

    def __init__(self, sender: Any, requests: Counter[str]):
        self._sender, self._requests = sender, requests

    def send(self, request: Any, ordered: bool = False) -> Any:
        for one in request if utils.is_list_like(request) else [request]:
            if isinstance(one, functions.InvokeWithoutUpdatesRequest):  # the live client's wrapper
                one = one.query
            self._requests[type(one).__name__] += 1
        return self._sender.send(request, ordered=ordered)


def request_kind(type_name: str) -> str:
    """A request's type as a metric label: ``GetPeerDialogsRequest`` -> ``get_peer_dialogs``."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", type_name.removesuffix("Request")).lower()


def input_peer(channel: Channel) -> types.InputPeerChannel:
    # Stored id + access_hash: resolving usernames every run gets accounts flood-banned.
    return types.InputPeerChannel(channel.id, channel.access_hash)
