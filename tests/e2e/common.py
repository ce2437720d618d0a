"""What the end-to-end tests share: the application side of a stack (databases, bucket, every
store read back), and the setup of a vision task that can be killed in the middle of its work."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from psycopg import sql as pgsql

from devtools.airflow_stack import AirflowStack
from devtools.sample import NEWS, register_sample
from devtools.services import PgTarget, recreate_database
from include.album.stores import db
from tests.conftest import ADMIN_DSN, PG_HOST, PG_PORT, PG_USER
from tests.helpers import store_contents, store_state

RUN_TIMEOUT = 600
COLLECTION = GRAPH = "telegram_albums"  # the defaults of the settings and of pipeline_env
SHARED = 7000000000000000001  # the sample's grouped_id in two channels: four photos in NEWS


class Stack(AirflowStack):
    """A stack wired to an application database, bucket, Qdrant directory and graph of its own."""

    app: PgTarget
    bucket: str
    s3_endpoint: str
    falkordb_port: int
    started: datetime

    def stores(self, since: datetime | None = None) -> dict:
        """``store_state`` of Postgres, S3, Qdrant and the graph (``store_contents`` with ``since``),
        read while no run is active: Qdrant's local mode admits one process at a time."""
        from falkordb import FalkorDB
        from qdrant_client import QdrantClient

        from include.album.stores.graph import FalkorGraph

        def open_qdrant():
            try:
                return QdrantClient(path=str(self.home / "qdrant"))
            except RuntimeError:  # "already accessed by another instance": a task holds it
                return None

        self.wait_for("no active run", lambda: not self.active_runs(), timeout=RUN_TIMEOUT, every=2)
        qdrant = self.wait_for("Qdrant's local-mode lock", open_qdrant, timeout=120)
        graph = FalkorGraph(FalkorDB(host="127.0.0.1", port=self.falkordb_port), GRAPH)
        try:
            with app_conn(self) as conn:
                if since is None:
                    return store_state(conn, self.s3(), self.bucket, qdrant, COLLECTION, graph)
                return store_contents(conn, self.s3(), self.bucket, qdrant, COLLECTION, graph, since=since)
        finally:
            qdrant.close()
            graph.close()

    def s3(self):
        return s3_client(self.s3_endpoint)


def s3_client(endpoint: str):
    import boto3

    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="x",
                        aws_secret_access_key="x")


def app_conn(stack: Stack):
    conn = db.connect(stack.app.dsn)
    conn.autocommit = True
    return conn


def create_databases(tag: str, expected: dict, s3_endpoint: str) -> tuple[PgTarget, str, str, list[str]]:
    """A metadata database, an application database holding the sample's channels, and a bucket.

    Returns (application target, metadata conninfo, bucket, names of the databases to drop)."""
    meta_db, app_db = f"telegram_albums_{tag}_meta", f"telegram_albums_{tag}_app"
    recreate_database(ADMIN_DSN, meta_db)
    recreate_database(ADMIN_DSN, app_db)
    app = PgTarget(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname=app_db)
    with db.connect(app.dsn) as conn:
        conn.autocommit = True
        db.apply_migrations(conn)
        register_sample(conn, expected)
    bucket = f"albums-{tag.replace('_', '-')}"
    s3_client(s3_endpoint).create_bucket(Bucket=bucket)
    meta_dsn = psycopg.conninfo.make_conninfo(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname=meta_db)
    return app, meta_dsn, bucket, [meta_db, app_db]


def drop_databases(names: list[str]) -> None:
    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        for name in names:
            conn.execute(pgsql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(pgsql.Identifier(name)))


def undo_album_processing(stack: Stack) -> tuple[dict, list[str], datetime]:
    """Give a vision task real work: undo the processing of NEWS's four-photo album in the stores.

    Its cached vision results and summary are deleted, its enrichment, index marker and status
    reset, its S3 summaries deleted — exactly what the stores hold for an album ingested but
    not processed yet; the next run picks it up (albums still needing work). Returns the
    album's row, its items' sha256 and the moment of the reset.
    """
    with app_conn(stack) as conn:
        album = conn.execute("SELECT * FROM media_groups WHERE channel_id = %s AND grouped_id = %s",
                             (NEWS, SHARED)).fetchone()
        shas = [r["sha256"] for r in conn.execute(
            "SELECT sha256 FROM media_group_items WHERE group_id = %s ORDER BY position", (album["id"],))]
    assert album["status"] == "assembled" and len(set(shas)) == len(shas) == 4 and all(shas)
    summaries = sorted(album["meta"]["enrichment"]["s3_keys"].values())
    stack.wait_for("no active run", lambda: not stack.active_runs(), timeout=RUN_TIMEOUT, every=2)
    reset_at = datetime.now(UTC)
    with app_conn(stack) as conn, conn.transaction():
        assert conn.execute("DELETE FROM vision_results WHERE sha256 = ANY(%s)", (shas,)).rowcount == 4
        conn.execute("DELETE FROM album_summaries WHERE album_id = %s", (album["id"],))
        conn.execute("UPDATE media_groups SET status = 'open', meta = meta - 'enrichment' - 'index' WHERE id = %s",
                     (album["id"],))
    s3 = stack.s3()
    for key in summaries:
        s3.delete_object(Bucket=stack.bucket, Key=key)
    return album, shas, reset_at


def vision_midway(stack: Stack, run_id: str, shas: list[str]) -> dict:
    """Wait until the run's vision task has stored at least one of the album's four results and
    not all of them; returns its running task instance (pid, try_number, hostname) and the count."""
    deadline = time.monotonic() + RUN_TIMEOUT
    with psycopg.connect(stack.meta_dsn, autocommit=True, row_factory=psycopg.rows.dict_row) as meta, \
            app_conn(stack) as conn:
        while True:
            assert time.monotonic() < deadline, "the album's vision task never ran"
            running = meta.execute("SELECT pid, try_number, hostname FROM task_instance "
                                   "WHERE dag_id = 'telegram_albums' AND run_id = %s AND task_id = 'album.vision' "
                                   "AND state = 'running' AND pid IS NOT NULL", (run_id,)).fetchone()
            stored = conn.execute("SELECT count(*) AS n FROM vision_results WHERE sha256 = ANY(%s)",
                                  (shas,)).fetchone()["n"]
            assert stored < 4, "the vision task analysed all four images before it could be killed"
            if running and stored >= 1:
                return {**running, "results_stored": stored}
            time.sleep(0.05)


def retried_vision_counts(stack: Stack, run_id: str, try_number: int) -> tuple[int, int]:
    """(analysed, cached) in the log of the vision task's try ``try_number``."""
    import re

    log = Path(stack.home) / "logs" / "dag_id=telegram_albums" / f"run_id={run_id}" / "task_id=album.vision" / \
        "map_index=0" / f"attempt={try_number}.log"
    counts = re.search(r"album \d+ vision: \{'analysed': (\d+), 'cached': (\d+)", log.read_text())
    return int(counts[1]), int(counts[2])
