"""Postgres access: SQL files loaded by name, ordered migrations, small helpers.

Every statement lives in ``include/sql`` and takes parameters (``%(name)s``); nothing is
assembled from data. Functions take an open psycopg 3 connection (from
``PostgresHook.get_conn()`` in tasks, or ``connect(dsn)`` in the CLI and tests).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import dict_row

log = logging.getLogger(__name__)

SQL_DIR = Path(__file__).resolve().parents[2] / "sql"
MIGRATIONS_DIR = SQL_DIR / "migrations"
QUERIES_DIR = SQL_DIR / "queries"

_MIGRATIONS_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version     text PRIMARY KEY,
    checksum    text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
)
"""
_MIGRATION_LOCK = "SELECT pg_advisory_xact_lock(hashtext('telegram_albums.migrations'))"


@cache
def sql(name: str) -> str:
    """The text of ``include/sql/queries/<name>.sql``."""
    path = QUERIES_DIR / f"{name}.sql"
    if not path.is_file():
        raise FileNotFoundError(f"no query named {name!r} in {QUERIES_DIR}")
    return path.read_text(encoding="utf-8")


def connect(dsn: str) -> psycopg.Connection:
    return psycopg.connect(dsn, row_factory=dict_row)


def fetch_all(conn: psycopg.Connection, name: str, params: Mapping[str, Any] | None = None) -> list[dict]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(sql(name), params or {})
        return cur.fetchall()


def fetch_one(conn: psycopg.Connection, name: str, params: Mapping[str, Any] | None = None) -> dict | None:
    rows = fetch_all(conn, name, params)
    return rows[0] if rows else None


def execute(conn: psycopg.Connection, name: str, params: Mapping[str, Any] | None = None) -> int:
    with conn.cursor() as cur:
        cur.execute(sql(name), params or {})
        return cur.rowcount


def execute_many(conn: psycopg.Connection, name: str, rows: Iterable[Mapping[str, Any]]) -> None:
    rows = list(rows)
    if rows:
        with conn.cursor() as cur:
            cur.executemany(sql(name), rows)


def fetch_many(conn: psycopg.Connection, name: str, rows: Iterable[Mapping[str, Any]]) -> list[dict]:
    """Run ``name`` once per row in one pipelined batch; the rows every statement returned, in order."""
    rows = list(rows)
    if not rows:
        return []
    returned = []
    with conn.cursor(row_factory=dict_row) as cur:
        cur.executemany(sql(name), rows, returning=True)
        while True:
            returned.extend(cur.fetchall())
            if not cur.nextset():
                return returned


def migration_files() -> list[Path]:
    return sorted(MIGRATIONS_DIR.glob("[0-9][0-9][0-9][0-9]_*.sql"))


def apply_migrations(conn: psycopg.Connection) -> list[str]:
    """Apply the migrations not applied yet, in order, each in its own transaction.

    Safe to run concurrently (advisory lock) and on every DAG run; an applied migration
    whose file changed since is an error, not a silent re-run.
    """
    applied_now = []
    with conn.transaction():
        conn.execute(_MIGRATION_LOCK)
        conn.execute(_MIGRATIONS_TABLE)
        rows = conn.execute("SELECT version, checksum FROM schema_migrations").fetchall()
        applied = {row[0] if isinstance(row, tuple) else row["version"]:
                   row[1] if isinstance(row, tuple) else row["checksum"] for row in rows}
        for path in migration_files():
            text = path.read_text(encoding="utf-8")
            checksum = hashlib.sha256(text.encode("utf-8")).hexdigest()
            version = path.stem
            if version in applied:
                if applied[version] != checksum:
                    raise RuntimeError(
                        f"migration {path.name} was changed after it was applied; add a new migration "
                        "instead of editing an applied one"
                    )
                continue
            with conn.transaction():
                conn.execute(text)
                conn.execute("INSERT INTO schema_migrations (version, checksum) VALUES (%s, %s)",
                             (version, checksum))
            applied_now.append(version)
            log.info("applied migration %s", path.name)
    return applied_now
