"""The Telethon client every task uses, live or archive: it counts its requests and connects lazily.

Live and archive share every line of ``source``: the archive transport only replaces the
network below ``TelegramClient._call`` (see ``archive.py``).
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

from telethon import TelegramClient, functions, types, utils
from telethon.sessions import StringSession

from include.album.domain.models import Channel, Skip
from include.album.domain.settings import ConfigurationError
from include.album.source.failures import SESSION_UNUSABLE, SessionUnusable

log = logging.getLogger(__name__)

# Telegram's 5xx answers and timeouts are retried this many times by Telethon (2 s apart),
# then the last error is raised and the channel is left for the next run.
REQUEST_RETRIES = 5


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
        self._open = False
        self._forgot_flood_wait = False

    async def open(self) -> None:
        """Connect and check the session, once: callers open when they first need Telegram, so a
        task with nothing to ask costs no connection. Never prompts (a task must not log in).

        Raises ``SessionUnusable`` when Telegram refuses the session. (Telethon's own
        ``is_user_authorized`` would read any error, a 500 included, as "not logged in".)
        """
        if self._open:
            return
        await self.connect()
        try:
            await self(functions.updates.GetStateRequest())
        except SESSION_UNUSABLE as exc:
            raise SessionUnusable(self.conn_id, exc) from exc
        self._authorized = True  # what Telethon's is_user_authorized() would otherwise ask again
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
        return await super()._call(_Counted(sender, self.requests), request, ordered=ordered,
                                   flood_sleep_threshold=flood_sleep_threshold)

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


def make_client(*, api_id: str | int | None, api_hash: str | None, extra: dict[str, Any],
                as_of: datetime | None = None, flood_sleep_threshold: int = 60,
                conn_id: str = "telegram_default") -> PipelineClient:
    """Client for the ``telegram_default`` connection (login=api_id, password=api_hash).

    Extra ``archive`` (a path) selects the archive transport (with extra ``faults``: Telegram's
    errors to inject, see ``archive.Fault``); otherwise extra ``session`` must hold a
    ``StringSession`` made once with ``python -m include.album login``.
    """
    if extra.get("archive"):
        from include.album.source.archive import ArchiveTelegramClient, Fault

        try:
            faults = [Fault.from_mapping(f) for f in extra.get("faults") or ()]
        except (TypeError, ValueError) as exc:
            raise ConfigurationError(f"connection {conn_id}: extra.faults: {exc}") from None
        not_joined = {int(c) for c in extra.get("not_joined") or ()}
        return ArchiveTelegramClient(Path(extra["archive"]), as_of=as_of, faults=faults, not_joined=not_joined,
                                     flood_sleep_threshold=flood_sleep_threshold, conn_id=conn_id)
    session = extra.get("session")
    if not session or not api_id or not api_hash:
        raise ConfigurationError(
            f"connection {conn_id} needs login=api_id, password=api_hash and extra.session "
            "(run `python -m include.album login` once to create the session string), "
            "or extra.archive=<path> for the offline archive transport (README \"Connections\")"
        )
    # Bounded: a request is retried REQUEST_RETRIES times (Telegram's 5xx and timeouts; then the
    # last error is raised), a lost connection re-established 5 times, each attempt times out
    # after 30 s; then the channel is left for the next run, or the task fails and retries.
    return PipelineClient(StringSession(session), int(api_id), api_hash, conn_id=conn_id,
                          flood_sleep_threshold=flood_sleep_threshold, receive_updates=False,
                          request_retries=REQUEST_RETRIES, raise_last_call_error=True, connection_retries=5,
                          retry_delay=2, timeout=30)


def input_peer(channel: Channel) -> types.InputPeerChannel:
    # Stored id + access_hash: resolving usernames every run gets accounts flood-banned.
    return types.InputPeerChannel(channel.id, channel.access_hash)
