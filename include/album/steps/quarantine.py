"""Poison albums: failures of album steps, quarantine, re-queueing.

An album step runs each album of its unit on its own. When one fails, the others still run;
the failure is recorded and the task raises, so Airflow retries it (bounded, with backoff).
On the task's last try the failing albums are quarantined instead — with the step and the
error — and the task succeeds, so one poison album never blocks the other albums or later
runs. ``albums_needing_work`` leaves quarantined albums out until a person re-queues them
(``python -m include.album quarantine requeue``) or their composition changes.

Infrastructure trouble (a store down, a dropped connection, a timeout) is not the album's
fault: it is raised at once, never quarantines anything, and the next run picks the album up.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable, Sequence
from typing import TypeVar

import psycopg

from include.album.domain.lifecycle import Album, AlbumStep
from include.album.steps import metrics
from include.album.stores import db

log = logging.getLogger(__name__)
T = TypeVar("T")


class AlbumsFailed(Exception):
    """Some albums of a unit failed a step; the task retries them (the others are done)."""


def is_transient(exc: BaseException) -> bool:
    """True for trouble with a service or the network rather than with the album's data."""
    import botocore.exceptions
    import httpx
    import psycopg

    transient: tuple[type[BaseException], ...] = (
        ConnectionError, TimeoutError, socket.gaierror, psycopg.OperationalError, psycopg.InterfaceError,
        botocore.exceptions.ConnectionError, botocore.exceptions.NoCredentialsError, httpx.TransportError,
    )
    try:
        import redis

        transient += (redis.ConnectionError, redis.TimeoutError)
    except ImportError:  # pragma: no cover - redis is a dependency
        pass
    try:
        from qdrant_client.http.exceptions import ResponseHandlingException

        transient += (ResponseHandlingException,)
    except ImportError:  # pragma: no cover
        pass
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, transient):
            return True
        if isinstance(seen, botocore.exceptions.ClientError):
            status = seen.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            if status >= 500 or seen.response.get("Error", {}).get("Code") in {"SlowDown", "RequestTimeout"}:
                return True
        seen = seen.__cause__ or seen.__context__
    return False


def run_guarded(albums: Sequence[Album], step: AlbumStep,
                action: Callable[[Album], T]) -> tuple[dict[int, T], list[tuple[Album, Exception]]]:
    """``action(album)`` for each album; returns (outcomes by album id, (album, error) failures).

    A transient error is raised at once (the task retries; nothing is the album's fault).
    """
    outcomes, failures = {}, []
    for album in albums:
        try:
            outcomes[album.id] = action(album)
        except Exception as exc:
            if is_transient(exc):
                raise
            log.exception("%s: %s failed", album.label, step)
            failures.append((album, exc))
    return outcomes, failures


def settle(conn: psycopg.Connection, step: AlbumStep, failures: Sequence[tuple[Album, Exception]], *,
           last_try: bool) -> None:
    """Record the failures; quarantine them on the last try, else raise so the task retries."""
    if not failures:
        return
    for album, exc in failures:
        error = f"{type(exc).__name__}: {exc}"[:2000]
        db.fetch_one(conn, "album_failure_record", {"album_id": album.id, "content_hash": album.content_hash,
                                                    "step": step, "error": error, "quarantine": last_try})
        metrics.incr("album_step_failures_total", label="quarantined" if last_try else "retried")
        if last_try:
            log.error("%s quarantined after failing %s on every try (%s); the other albums go on. Re-queue it "
                      "with `python -m include.album quarantine requeue %s` once the cause is fixed",
                      album.label, step, error, album.id)
    if not last_try:
        labels = ", ".join(album.label for album, _ in failures)
        raise AlbumsFailed(f"{step} failed for {labels}; the task retries them (the unit's other albums are done), "
                           "and quarantines them if the last try fails too") from failures[0][1]


def quarantined(conn: psycopg.Connection) -> list[dict]:
    return db.fetch_all(conn, "albums_quarantined")


def requeue(conn: psycopg.Connection, album_ids: Sequence[int] | None) -> list[int]:
    """Release quarantined albums (all when ``album_ids`` is None); the next run processes them."""
    rows = db.fetch_all(conn, "albums_requeue", {"album_ids": list(album_ids) if album_ids is not None else None})
    return sorted(r["album_id"] for r in rows)
