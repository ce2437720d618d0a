"""The Telegram session's waits, kept in Postgres so that every run of both DAGs obeys them.

Telethon remembers a wait only for the life of one client, and every task makes its own. A
wait that concerns the whole session (``client.SESSION_WIDE``: downloads, the change check;
and reading messages once two channels in a row met one) is stored in ``telegram_waits`` when
the task's Telegram work ends, and every client is seeded with the stored waits before its
first request: until a wait ends, Telethon answers requests of its kind itself, without asking.
A channel's own wait is ``channels.flood_wait_until`` (``ingest``).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import psycopg

from include.album.source.client import PipelineClient
from include.album.source.failures import Wait
from include.album.steps import metrics
from include.album.stores import db

log = logging.getLogger(__name__)


def stored_waits(conn: psycopg.Connection, conn_id: str, now: datetime) -> dict[str, Wait]:
    """The waits given to the session of ``conn_id`` that have not ended by ``now``, by request."""
    return {row["request"]: Wait(row["error"], int((row["until"] - row["given_at"]).total_seconds()), row["until"])
            for row in db.fetch_all(conn, "telegram_waits_active", {"conn_id": conn_id, "now": now})}


def respect_stored_waits(conn: psycopg.Connection, client: PipelineClient, now: datetime | None = None
                         ) -> dict[str, Wait]:
    """Seed ``client`` with the session's stored waits; returns them."""
    now = now or datetime.now(UTC)
    waits = stored_waits(conn, client.conn_id, now)
    client.respect(waits, now)
    for request, wait in waits.items():
        log.info("Telegram asked this session to wait (%s) until %s before %s; not asked before then", wait.error,
                 wait.until.isoformat(timespec="seconds"), request)
    return waits


def store_session_waits(conn: psycopg.Connection, client: PipelineClient) -> None:
    """Keep the waits Telegram gave ``client`` that concern the whole session, for later runs."""
    waits = client.session_waits()
    if not waits:
        return
    with conn.transaction():
        db.execute_many(conn, "telegram_wait_store", ({
            "conn_id": client.conn_id, "request": request, "until": wait.until, "error": wait.error,
            "given_at": wait.given_at} for request, wait in waits.items()))
    for request, wait in waits.items():
        metrics.incr("telegram_flood_waits_total")
        log.warning("Telegram asked this session to wait %ss (%s) before %s, until %s; every run of both DAGs "
                    "obeys it", wait.seconds, wait.error, request, wait.until.isoformat(timespec="seconds"))


@asynccontextmanager
async def telegram_session(conn: psycopg.Connection, client: PipelineClient,
                           now: datetime | None = None) -> AsyncIterator[PipelineClient]:
    """``client`` seeded with the stored waits; its new session-wide waits stored at the end,
    and its connection closed, whatever happens in between."""
    respect_stored_waits(conn, client, now)
    try:
        yield client
    finally:
        try:
            store_session_waits(conn, client)
        except psycopg.Error as exc:  # an outage of ours is already failing the task: do not hide it
            log.warning("could not keep Telegram's waits for later runs (%s); the next run may ask again", exc)
        await client.close()
