"""The Telegram updates listener: hears the subscribed channels post and says which, in seconds.

It runs in an Airflow trigger (``orchestration.updates_trigger``), but nothing here needs
Airflow::

    take the lease ─► connect (its own session) ─► hear ─► debounce ─► keep the hints ─► yield them
         ▲                                                                                    │
         └──────────── lost connection, dead session, Telegram failing: back off ◄────────────┘

* **One at a time.** A lease in Postgres (``telegram_listeners``): the holder renews it every
  ``renew_seconds``; another listener (a second triggerer, a trigger moved to another one)
  waits until it runs out. A holder that cannot renew (an error, or no answer within a third
  of the lease) stops listening before its lease ends, so two connections of one session never
  overlap (Telegram would kill the session).
* **Durable.** Telethon's update state (the account's and each channel's ``pts``) is kept on the
  lease's row and loaded by the next listener, which catches up with one ``getDifference``:
  Telegram names the channels that posted meanwhile ("too long"), and their newest message ids
  are asked for together (one ``getPeerDialogs`` per 100 channels). It asks nothing of a channel
  on its own (``source.updates``).
* **Hints, not payloads.** A batch of ``Hint`` (channel, newest message id) is written to
  ``channels.top_message`` before it is yielded: whatever happens to the event that carries it,
  the next run pulls the channel (``change_check.find_hinted_channels``). Duplicates and late
  hints change nothing: the pull goes by the channel's mark.
* **What it heard is not asked for again.** The messages themselves (new ones, and edits and
  deletions of those not pulled yet) are kept in ``heard_messages`` before their hint is
  written: the pull takes them from there, and asks Telegram only for ids the listener did not
  hear (``ingest``); with the listener, a post costs its downloads and nothing more.
* **Never ends.** Every failure is logged and retried after a backoff (1 s doubling to 5 min);
  a session Telegram refuses is retried at the longest backoff until it is fixed.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from telethon import types

from include.album.domain.models import Channel
from include.album.source.changes import newest_message_ids
from include.album.source.client import PipelineClient, request_kind
from include.album.source.failures import Meaning, error_name, meaning
from include.album.source.updates import Debouncer, Hint, update_state
from include.album.steps import metrics
from include.album.stores import db

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ListenerConfig:
    name: str = "telegram_updates"  # the lease's name: the listener's connection id
    lease_seconds: float = 60.0
    renew_seconds: float = 10.0  # also how often subscriptions are re-read and the state kept
    backoff_first: float = 1.0
    backoff_max: float = 300.0
    quiet: float = 1.0  # Debouncer: after a lone post
    album_quiet: float = 5.0  # after an album's item (items arrive one by one over a few seconds)
    max_hold: float = 20.0


class ListenerDisconnected(Exception):
    """The listening connection ended (Telegram, the network, or a fault)."""


class UpdatesListener:
    """Yields batches of hints, forever. ``open_db`` opens an autocommit async connection to the
    pipeline's database; ``make_client`` builds a listening client (``source.updates``) from
    the listener's connection, anew for each session, so an edited connection is picked up."""

    def __init__(self, open_db: Callable[[], Awaitable[psycopg.AsyncConnection]],
                 make_client: Callable[[], Awaitable[Any]], holder: str, config: ListenerConfig | None = None):
        self.open_db, self.make_client, self.holder = open_db, make_client, holder
        self.config = config or ListenerConfig()

    async def hints(self) -> AsyncIterator[list[Hint]]:
        failures = 0
        while True:
            try:
                async for batch in self._session():
                    failures = 0
                    yield batch
            except Exception as exc:  # noqa: BLE001 - a listener never gives up; each failure is logged
                failures += 1
                delay = self._backoff(exc, failures)
                log.warning("listener %s stopped (%s: %s); listening again in %.0f s", self.config.name,
                            type(exc).__name__, exc, delay)
                await asyncio.sleep(delay)
                continue
            failures += 1  # the lease was lost: take it again when it is free
            await asyncio.sleep(self._backoff(None, failures))

    def _backoff(self, exc: BaseException | None, failures: int) -> float:
        if exc is not None and meaning(exc) is Meaning.SESSION_UNUSABLE:
            log.error("listener %s: Telegram refuses its session (%s); create one with `python -m include.album "
                      "login --conn-id %s` and store it in that connection; the 5-minute schedule keeps pulling "
                      "meanwhile", self.config.name, type(exc).__name__, self.config.name)
            return self.config.backoff_max
        return min(self.config.backoff_max, self.config.backoff_first * 2 ** (failures - 1))

    async def _session(self) -> AsyncIterator[list[Hint]]:
        """One lease, one connection: hints until it ends (an exception, or the lease lost)."""
        conn = await self.open_db()
        async with conn:
            state = await self._take_lease(conn)
            client = await self.make_client()
            loop = asyncio.get_running_loop()
            debouncer = Debouncer(quiet=self.config.quiet, album_quiet=self.config.album_quiet,
                                  max_hold=self.config.max_hold)
            too_long: set[int] = set()
            heard = HeardMessages()

            def on_message(channel_id: int, message: Any, new: bool) -> None:
                heard.keep(channel_id, message)
                if new and isinstance(message, types.Message):
                    debouncer.saw(channel_id, message.id, message.grouped_id is not None, loop.time())

            client.listen(await self._channels(conn), state, on_message=on_message, on_deleted=heard.forget,
                          on_too_long=too_long.add)
            reported: Counter[str] = Counter()
            try:
                await client.connect()
                if state:  # what was posted while no listener ran: one getDifference (Telethon's catch-up)
                    await client.catch_up()
                log.info("listener %s (%s) hears %d channels", self.config.name, self.holder, len(client.watched))
                renewed = loop.time()
                while True:
                    wake = min(debouncer.next_due(), renewed + self.config.renew_seconds)
                    await self._sleep_until(client, wake - loop.time())
                    if loop.time() >= renewed + self.config.renew_seconds:
                        # Bounded: a renewal that hangs must not outlive the lease (self-fencing).
                        if not await asyncio.wait_for(self._renew(conn, client), self.config.lease_seconds / 3):
                            return
                        renewed = loop.time()
                        reported = _report(client, reported)
                    batch = _merged(debouncer.due(loop.time()) + await _newest_of(client, too_long))
                    await heard.write(conn)  # before the hints that name them
                    if batch:
                        await self._keep(conn, batch)
                        yield batch
            finally:
                await self._end(conn, client, reported, heard, debouncer.due(math.inf))

    async def _sleep_until(self, client: Any, seconds: float) -> None:
        disconnected = client.disconnected
        if not disconnected.done():
            with suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(disconnected), timeout=max(0.05, min(seconds, 1.0)))
        if disconnected.done() or not client.is_connected():
            error = getattr(client, "_updates_error", None)
            if error is not None:
                raise error
            raise ListenerDisconnected("the listening connection ended")

    async def _take_lease(self, conn: psycopg.AsyncConnection) -> dict | None:
        """Wait for the lease; returns the update state kept by the listener before."""
        said = False
        while True:
            row = await _fetch_one(conn, "listener_lease_take", self._lease_params())
            if row is not None:
                return row["update_state"]
            if not said:
                log.info("listener %s: another listener holds the lease; waiting for it to end", self.config.name)
                said = True
            await asyncio.sleep(self.config.lease_seconds / 3)

    def _lease_params(self) -> dict[str, Any]:
        return {"name": self.config.name, "holder": self.holder, "seconds": self.config.lease_seconds}

    async def _renew(self, conn: psycopg.AsyncConnection, client: Any) -> bool:
        """Renew the lease, keep the update state, follow subscriptions; False: the lease is lost."""
        if await _fetch_one(conn, "listener_lease_take", self._lease_params()) is None:
            log.warning("listener %s (%s) lost its lease to another listener; it stops", self.config.name,
                        self.holder)
            return False
        await _execute(conn, "listener_state_keep", {**self._lease_params(), "state": Jsonb(update_state(client))})
        await _execute(conn, "heard_expire", {})
        client.watch(await self._channels(conn))
        return True

    async def _channels(self, conn: psycopg.AsyncConnection) -> dict[int, int]:
        async with conn.cursor(row_factory=dict_row) as cursor:
            await cursor.execute(db.sql("listener_channels"))
            return {row["id"]: row["access_hash"] for row in await cursor.fetchall()}

    async def _keep(self, conn: psycopg.AsyncConnection, batch: list[Hint]) -> None:
        await _execute(conn, "channels_hinted", {"channel_ids": [h.channel_id for h in batch],
                                                 "newest": [h.newest for h in batch]})
        metrics.incr("telegram_listener_hints_total", len(batch))
        log.info("heard %d channels post: %s", len(batch), ", ".join(f"{h.channel_id} (up to {h.newest})"
                                                                     for h in batch))

    async def _end(self, conn: psycopg.AsyncConnection, client: Any, reported: Counter[str], heard: HeardMessages,
                   held: list[Hint]) -> None:
        """Disconnect first (never two connections of one session), then keep what was heard (the
        hints still held: the next run of any kind pulls them), the state, and let the lease go."""
        with suppress(Exception):
            await asyncio.shield(client.disconnect())
        _report(client, reported)
        if conn.closed:
            return
        try:
            await heard.write(conn)
            if held:
                await self._keep(conn, held)
            await _execute(conn, "listener_state_keep", {**self._lease_params(), "state": Jsonb(update_state(client))})
            await _execute(conn, "listener_lease_release", self._lease_params())
        except psycopg.Error as exc:
            log.warning("listener %s could not keep its state or release its lease (%s); the lease runs out in "
                        "%.0f s", self.config.name, exc, self.config.lease_seconds)


class HeardMessages:
    """The messages heard since the last write: kept (the latest version of each) or forgotten
    (deleted), written together before the hints that name them."""

    def __init__(self) -> None:
        self.kept: dict[tuple[int, int], Any] = {}
        self.forgotten: set[tuple[int, int]] = set()

    def keep(self, channel_id: int, message: Any) -> None:
        self.kept[channel_id, message.id] = message
        self.forgotten.discard((channel_id, message.id))

    def forget(self, channel_id: int, message_ids: list[int]) -> None:
        for message_id in message_ids:
            self.kept.pop((channel_id, message_id), None)
            self.forgotten.add((channel_id, message_id))

    async def write(self, conn: psycopg.AsyncConnection) -> None:
        if self.kept:
            keys = sorted(self.kept)
            await _execute(conn, "heard_keep", {"channel_ids": [c for c, _ in keys],
                                                "message_ids": [m for _, m in keys],
                                                "messages": [bytes(self.kept[key]) for key in keys]})
        if self.forgotten:
            keys = sorted(self.forgotten)
            await _execute(conn, "heard_forget", {"channel_ids": [c for c, _ in keys],
                                                  "message_ids": [m for _, m in keys]})
        self.kept.clear()
        self.forgotten.clear()


async def _newest_of(client: Any, too_long: set[int]) -> list[Hint]:
    """Hints for the channels Telegram said are "too long" (the set is emptied): their newest ids,
    one ``getPeerDialogs`` per 100 channels. Those it does not answer now are left to the
    schedule's change check."""
    if not too_long:
        return []
    channels = [Channel(id=c, access_hash=client.watched[c], username=None, title="")
                for c in sorted(too_long) if c in client.watched]
    too_long.clear()
    found = await newest_message_ids(client, channels)
    log.info("Telegram said %d channels have more news than it sent ('too long'): asked for their newest messages",
             len(channels))
    unanswered = [c.id for c in channels if c.id not in found.newest]
    if unanswered:
        why = (f"a wait of {found.wait.seconds} s" if found.wait else error_name(found.telegram_error)
               if found.telegram_error else ", ".join(sorted({error_name(e) for e in found.failed.values()})))
        log.warning("the newest messages of channels %s are not known (%s); the schedule's change check pulls them",
                    unanswered, why)
    return [Hint(channel_id, newest) for channel_id, newest in found.newest.items()]


def _merged(hints: list[Hint]) -> list[Hint]:
    """One hint per channel (its highest newest id), in channel order."""
    newest: dict[int, int] = {}
    for hint in hints:
        newest[hint.channel_id] = max(hint.newest, newest.get(hint.channel_id, 0))
    return [Hint(channel_id, newest[channel_id]) for channel_id in sorted(newest)]


def _report(client: PipelineClient, reported: Counter[str]) -> Counter[str]:
    """Send the requests the listener made since the last report (metric ``telegram_requests_total``)."""
    for name, count in sorted((client.requests - reported).items()):
        metrics.incr("telegram_requests_total", count, label=request_kind(name))
    return Counter(client.requests)


async def _fetch_one(conn: psycopg.AsyncConnection, name: str, params: dict[str, Any]) -> dict | None:
    async with conn.cursor(row_factory=dict_row) as cursor:
        await cursor.execute(db.sql(name), params)
        return await cursor.fetchone()


async def _execute(conn: psycopg.AsyncConnection, name: str, params: dict[str, Any]) -> None:
    await conn.execute(db.sql(name), params)

