"""The Telethon client every task uses, live or archive: it counts its requests and connects lazily.

Live and archive share every line of ``source``: the archive transport only replaces the
network below ``TelegramClient._call`` (see ``archive.py``).
"""

from __future__ import annotations

import logging
import re
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

from telethon import TelegramClient, types, utils
from telethon.sessions import StringSession

from include.album.domain.models import Channel, Skip

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
