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
* **Durable.** Telethon's update state (each channel's ``pts``) is kept on the lease's row and
  loaded by the next listener: what it missed shows as a gap, and Telethon fetches it.
* **Hints, not payloads.** A batch of ``Hint`` (channel, newest message id) is written to
  ``channels.top_message`` before it is yielded: whatever happens to the event that carries it,
  the next run pulls the channel (``change_check.find_hinted_channels``). Duplicates and late
  hints change nothing: the pull goes by the channel's mark.
* **Never ends.** Every failure is logged and retried after a backoff (1 s doubling to 5 min);
  a session Telegram refuses is retried at the longest backoff until it is fixed.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from include.album.source.client import PipelineClient, request_kind
from include.album.source.failures import Meaning, meaning
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
            debouncer, gaps = Debouncer(quiet=self.config.quiet, album_quiet=self.config.album_quiet,
                                        max_hold=self.config.max_hold), []
            client.listen(await self._channels(conn), state,
                          on_new_message=lambda c, m, grouped: debouncer.saw(c, m, grouped, loop.time()),
                          on_gap=lambda c, newest: gaps.append(Hint(c, newest)))
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
                    batch = _merged(debouncer.due(loop.time()) + gaps)
                    gaps.clear()
                    if batch:
                        await self._keep(conn, batch)
                        yield batch
            finally:
                await self._end(conn, client, reported)

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

    async def _end(self, conn: psycopg.AsyncConnection, client: Any, reported: Counter[str]) -> None:
        """Disconnect first (never two connections of one session), then keep the state and let the lease go."""
        with suppress(Exception):
            await asyncio.shield(client.disconnect())
        _report(client, reported)
        if conn.closed:
            return
        try:
            await _execute(conn, "listener_state_keep", {**self._lease_params(), "state": Jsonb(update_state(client))})
            await _execute(conn, "listener_lease_release", self._lease_params())
        except psycopg.Error as exc:
            log.warning("listener %s could not keep its state or release its lease (%s); the lease runs out in "
                        "%.0f s", self.config.name, exc, self.config.lease_seconds)


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

