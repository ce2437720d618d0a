"""Fault injection through the DAGs (dag.test on real Postgres, moto S3, Redis, Qdrant local
mode and FalkorDB): outages, killed connections, FloodWaits, edits and deletions, drifted
stores, a poison album. Each test says what it injects and checks that nothing is lost,
nothing is duplicated and the stores end as a clean run leaves them.

The scheduler-level faults (SIGKILL of a task process, clearing runs and mapped albums,
backfills over ingested windows, secrets in logs) are in ``tests/e2e/test_airflow_e2e.py``.
See docs/reliability.md for the table of scenarios.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from devtools.archive_edits import append_messages, deletion_marker
from devtools.sample import LAB, MIXED, NEWS, SAMPLE_START, differences_from_expectation
from include.album.source.archive import ArchiveSender
from include.album.stores import db, graph
from include.album.stores.qdrant import album_point_id, post_point_id
from tests import graph_queries
from tests.dag.conftest import run_dag, xcom
from tests.helpers import s3_keys

pytestmark = [pytest.mark.dag, pytest.mark.integration, pytest.mark.faults]

SHARED = 7000000000000000001
STREET_FOOD = 7000000000000000002
NEWS_DOCS = 7000000000000000005
# A daily refresh run whose 48-hour look-back covers the sample's span.
REFRESH_RUN = SAMPLE_START.replace(hour=3, minute=30) + timedelta(days=1)


def post_rows(conn) -> dict:
    return {(r["channel_id"], r["message_id"]): {k: v for k, v in r.items() if k != "indexed_at"}
            for r in conn.execute("SELECT * FROM posts")}


def edited(archive, channel_id: int, message_id: int, text: str, minutes_later: int = 30):
    """The archived message as Telegram returns it after an edit."""
    original = next(m for m in ArchiveSender(archive).history(channel_id).messages if m.id == message_id)
    original.message = text
    original.edit_date = original.date + timedelta(minutes=minutes_later)
    return original


def test_edits_and_deletions_reach_every_store_and_nothing_else_changes(dagbag, pipeline, stores, conn):
    assert run_dag(dagbag)[0] == "success"
    before = stores.state()
    posts_before = post_rows(conn)
    shared_news = stores.album(NEWS, SHARED)
    news_docs = stores.album(NEWS, NEWS_DOCS)
    street_food = stores.album(LAB, STREET_FOOD)
    # Injected: two edits (an album caption on item 3, a post outside albums) and deletions of
    # one album item, a single video, and both items of the two-document album.
    append_messages(pipeline.archive, LAB, [edited(pipeline.archive, LAB, 108, "Street food market tour, part 2"),
                                            edited(pipeline.archive, LAB, 101, "Welcome to Album Lab (new edition)")])
    append_messages(pipeline.archive, NEWS, [deletion_marker(203), deletion_marker(209), deletion_marker(210)])
    append_messages(pipeline.archive, MIXED, [deletion_marker(305)])

    state, dag_run = run_dag(dagbag, "telegram_albums_refresh", logical_date=REFRESH_RUN)
    assert state == "success"
    after = stores.state()

    # Postgres: exactly those posts changed, the touched albums recomposed or tombstoned.
    posts = {(r["channel_id"], r["message_id"]): r for r in conn.execute("SELECT * FROM posts")}
    assert posts[(LAB, 108)]["text"] == "Street food market tour, part 2" and posts[(LAB, 108)]["edited_at"]
    assert posts[(LAB, 101)]["text"] == "Welcome to Album Lab (new edition)"
    deleted = {k for k, r in posts.items() if r["deleted_at"] is not None}
    assert deleted == {(NEWS, 203), (NEWS, 209), (NEWS, 210), (MIXED, 305)}
    changed_posts = {(LAB, 108), (LAB, 101), *deleted}
    posts_after = post_rows(conn)  # (items of re-indexed albums get a new indexed_at)
    assert {k: v for k, v in posts_before.items() if k not in changed_posts} == \
        {k: v for k, v in posts_after.items() if k not in changed_posts}

    news_after = stores.album(NEWS, SHARED)
    assert news_after["id"] == shared_news["id"] and news_after["items_count"] == 3
    assert news_after["status"] == "assembled"
    assert news_after["meta"]["enrichment"]["content_hash"] == news_after["content_hash"]
    assert stores.album(LAB, STREET_FOOD)["caption_text"] == "Street food market tour, part 2"
    gone = stores.album(NEWS, NEWS_DOCS)
    assert gone["deleted_at"] is not None and "enrichment" not in gone["meta"] and "index" not in gone["meta"]

    # S3: the deleted album's summaries are gone; the recomposed albums' summaries rewritten; media kept.
    assert not [k for k in after["s3"] if f"/{news_docs['id']}_vision" in k]
    rewritten = {k for k in before["s3"] if f"/{shared_news['id']}_vision" in k or f"/{street_food['id']}_vision" in k}
    assert {k for k in before["s3"] if before["s3"][k] != after["s3"].get(k)} == rewritten | {
        k for k in before["s3"] if f"/{news_docs['id']}_vision" in k}
    summary = json.loads(stores.s3.get_object(Bucket=stores.bucket, Key=sorted(rewritten)[0])["Body"].read())
    assert summary["content_hash"] in (news_after["content_hash"], stores.album(LAB, STREET_FOOD)["content_hash"])

    # Qdrant: deleted posts and the deleted album are gone; the edited texts are searchable.
    removed = {post_point_id(c, m) for c, m in deleted} | {album_point_id(news_docs["id"])}
    assert {post_point_id(NEWS, 203), post_point_id(MIXED, 305), album_point_id(news_docs["id"])} <= \
        set(before["qdrant"])  # (the captionless PDF item 209 never had a point: nothing to embed)
    assert not removed & set(after["qdrant"])
    points = stores.points([post_point_id(LAB, 101), post_point_id(LAB, 108), album_point_id(street_food["id"])])
    assert "new edition" in points[post_point_id(LAB, 101)]["text"]
    assert "part 2" in points[post_point_id(LAB, 108)]["text"]
    assert "part 2" in points[album_point_id(street_food["id"])]["text"]
    touched = {post_point_id(LAB, 101), post_point_id(LAB, 108), album_point_id(street_food["id"]),
               album_point_id(shared_news["id"]), *(post_point_id(NEWS, m) for m in (202, 204, 205))}  # positions
    assert {p: v for p, v in before["qdrant"].items() if p not in removed | touched} == \
        {p: v for p, v in after["qdrant"].items() if p not in touched}

    # Graph: the deleted posts and album are gone; the recomposed album has three items.
    assert not graph_queries.album_posts(stores.graph, news_docs["id"])
    assert [p["message_id"] for p in graph_queries.album_posts(stores.graph, shared_news["id"])] == [202, 204, 205]
    post_ids = {r["id"] for r in stores.graph.run("MATCH (p:Post) RETURN p.post_id AS id")}
    assert not {graph.post_id(c, m) for c, m in deleted} & post_ids

    # Reconciliation afterwards finds nothing to repair, and a second refresh changes nothing.
    assert xcom(dag_run, "reconcile") == {kind: 0 for kind in xcom(dag_run, "reconcile")}
    assert run_dag(dagbag, "telegram_albums_refresh", logical_date=REFRESH_RUN + timedelta(hours=1))[0] == "success"
    assert stores.state() == after


def test_reconciliation_repairs_drifted_stores(dagbag, pipeline, stores, conn):
    assert run_dag(dagbag)[0] == "success"
    clean = stores.state()
    album = stores.album(LAB, STREET_FOOD)
    other = stores.album(MIXED, 7000000000000000006)
    # Injected: an S3 summary deleted, an album point deleted, an orphan point, an Album node
    # deleted and an orphan Album node in the graph.
    summary_key = sorted(album["meta"]["enrichment"]["s3_keys"].values())[0]
    stores.s3.delete_object(Bucket=stores.bucket, Key=summary_key)
    client = stores.qdrant()
    from qdrant_client import models

    orphan = post_point_id(LAB, 999)
    vector = client.retrieve(pipeline.collection, [album_point_id(album["id"])], with_vectors=True)[0].vector
    client.upsert(pipeline.collection, [models.PointStruct(id=orphan, vector=vector, payload={
        "kind": "post", "channel_id": LAB, "message_id": 999, "tenant_ids": ["acme"],
        "posted_at": SAMPLE_START.isoformat(), "posted_ts": int(SAMPLE_START.timestamp()) + 60})])
    client.delete(pipeline.collection, [album_point_id(album["id"])])
    client.close()
    graph.delete_albums(stores.graph, [other["id"]])
    stores.graph.run("MERGE (a:Album {album_id: 424242}) SET a.posted_at = $at, a.content_hash = 'x'",
                     {"at": (SAMPLE_START + timedelta(minutes=1)).isoformat()})

    state, dag_run = run_dag(dagbag, "telegram_albums_refresh", logical_date=REFRESH_RUN)
    assert state == "success"
    drift = xcom(dag_run, "reconcile")
    assert drift == {"s3_summary_missing": 1, "media_missing": 0, "qdrant_missing": 1, "qdrant_orphan": 1,
                     "graph_missing": 1, "graph_orphan": 1}
    repaired = stores.state()
    assert repaired["s3"] == clean["s3"] and repaired["graph"] == clean["graph"]
    assert repaired["qdrant"] == clean["qdrant"]
    assert s3_keys(stores.s3, stores.bucket) == sorted(clean["s3"])


# -- outages and killed connections ------------------------------------------------------


def fast_retries(dagbag, dag_id: str = "telegram_albums", retries: int = 3, seconds: int = 2):
    """The DAG's own retry policy with short, fixed delays, so a test waits seconds, not minutes."""
    dag = dagbag.get_dag(dag_id)
    for task in dag.tasks:
        task.retries, task.retry_delay, task.retry_exponential_backoff = retries, timedelta(seconds=seconds), False
    return dag


def tries(dag_run) -> dict[tuple[str, int], int]:
    from airflow.models import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = session.query(TaskInstance.task_id, TaskInstance.map_index, TaskInstance.try_number).filter(
            TaskInstance.run_id == dag_run.run_id).all()
    return {(r.task_id, r.map_index): r.try_number for r in rows}


def test_s3_going_down_mid_run_is_retried_and_no_enrichment_points_at_a_missing_object(
        dagbag, pipeline, stores, conn, s3_endpoint, monkeypatch):
    import threading
    import time

    from include.album.stores.media import MediaStore
    from tests.helpers import TcpProxy

    proxy = TcpProxy(int(s3_endpoint.rsplit(":", 1)[1]))
    s3 = json.loads(pipeline.env["AIRFLOW_CONN_ALBUMS_S3"])
    s3["extra"]["endpoint_url"] = proxy.url
    monkeypatch.setenv("AIRFLOW_CONN_ALBUMS_S3", json.dumps(s3))
    # Injected: the S3 endpoint stops when the first album summary is being written, and
    # comes back once a task has failed for it and is waiting for its retry.
    put_json, outage = MediaStore.put_json, threading.Event()

    def put_json_then_outage(self, key, document):
        if not outage.is_set():
            outage.set()
            proxy.stop()
            threading.Thread(target=restart_after_a_failure, daemon=True).start()
        return put_json(self, key, document)

    def restart_after_a_failure():
        from airflow.models import TaskInstance
        from airflow.utils.session import create_session

        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with create_session() as session:
                if session.query(TaskInstance).filter(TaskInstance.state == "up_for_retry").count():
                    break
            time.sleep(0.2)
        proxy.start()

    monkeypatch.setattr(MediaStore, "put_json", put_json_then_outage)
    fast_retries(dagbag)
    try:
        state, dag_run = run_dag(dagbag)
    finally:
        proxy.stop()
    assert state == "success" and outage.is_set()
    assert max(t for (task_id, _), t in tries(dag_run).items() if task_id == "album.enrich") >= 2
    albums = conn.execute("SELECT id, status, meta FROM media_groups ORDER BY id").fetchall()
    assert {a["status"] for a in albums} == {"assembled"}
    for album in albums:
        for key in album["meta"]["enrichment"]["s3_keys"].values():
            stores.s3.head_object(Bucket=stores.bucket, Key=key)  # raises if missing
    assert differences_from_expectation(conn, pipeline.expected) == []


def test_a_postgres_connection_killed_mid_transaction_is_retried_without_a_partial_album(
        dagbag, pipeline, conn, monkeypatch):
    import psycopg

    from include.album.stores import db as album_db
    from tests.conftest import ADMIN_DSN

    execute_many, killed = album_db.execute_many, []

    def kill_before_album_items(connection, name, rows):
        # Injected: the task's connection is terminated by the server after the album's old
        # items were deleted and before its new ones are inserted, inside the transaction.
        if name == "album_item_insert" and not killed:
            killed.append(connection.info.backend_pid)
            with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(%s)", (connection.info.backend_pid,))
        return execute_many(connection, name, rows)

    monkeypatch.setattr(album_db, "execute_many", kill_before_album_items)
    fast_retries(dagbag)
    state, dag_run = run_dag(dagbag)
    assert state == "success" and killed
    assert max(t for (task_id, _), t in tries(dag_run).items() if task_id == "ingest") == 2
    assert differences_from_expectation(conn, pipeline.expected) == []
    partial = conn.execute("""SELECT g.id FROM media_groups g LEFT JOIN media_group_items i ON i.group_id = g.id
                              GROUP BY g.id HAVING count(i.*) <> max(g.items_count) OR max(g.status) <> 'assembled'
                           """).fetchall()
    assert partial == []


def test_redis_down_the_run_completes_without_the_cache_and_warns(dagbag, pipeline, conn, monkeypatch, caplog):
    from devtools.services import free_port

    # Injected: albums_redis points at a port nothing listens on.
    monkeypatch.setenv("AIRFLOW_CONN_ALBUMS_REDIS", json.dumps(
        {"conn_type": "redis", "host": "127.0.0.1", "port": free_port(), "extra": {"db": 0}}))
    state, _ = run_dag(dagbag)
    assert state == "success"
    assert differences_from_expectation(conn, pipeline.expected) == []
    assert {r["status"] for r in conn.execute("SELECT status FROM media_groups")} == {"assembled"}
    assert any("Redis unavailable" in r.getMessage() for r in caplog.records)


def test_a_long_floodwait_defers_one_channel_and_the_next_run_catches_up(dagbag, pipeline, conn, monkeypatch, bucket):
    import time

    pipeline.with_settings(monkeypatch, flood_sleep_threshold_seconds=1)
    # Injected: Telegram answers @novosti_test's history with FLOOD_WAIT_3 (above the 1-s threshold).
    monkeypatch.setenv("AIRFLOW_CONN_TELEGRAM_DEFAULT", json.dumps(
        {"conn_type": "generic", "extra": {"archive": str(pipeline.archive), "faults": [
            {"channel": NEWS, "rpc": ["history", "messages"], "error": "FLOOD_WAIT_3"}]}}))
    state, dag_run = run_dag(dagbag)
    assert state == "success"
    counts = {r["channel_id"]: r["n"] for r in
              conn.execute("SELECT channel_id, count(*) AS n FROM posts GROUP BY channel_id")}
    assert NEWS not in counts and counts[LAB] and counts[MIXED]
    deferred = conn.execute("SELECT flood_wait_until FROM channels WHERE id = %s", (NEWS,)).fetchone()
    assert deferred["flood_wait_until"] is not None

    time.sleep(max(0.0, (deferred["flood_wait_until"] - dag_run.start_date).total_seconds()) + 1)
    monkeypatch.setenv("AIRFLOW_CONN_TELEGRAM_DEFAULT", pipeline.env["AIRFLOW_CONN_TELEGRAM_DEFAULT"])
    assert run_dag(dagbag)[0] == "success"
    assert differences_from_expectation(conn, pipeline.expected) == []
    assert conn.execute("SELECT flood_wait_until FROM channels WHERE id = %s", (NEWS,)).fetchone()[
        "flood_wait_until"] is None


# -- a poison album ------------------------------------------------------------------------


def test_a_poison_album_is_quarantined_without_blocking_others_and_can_be_requeued(
        dagbag, pipeline, conn, pg, monkeypatch, capsys):
    import hashlib

    from devtools.sample import _file_id
    from include.album.admin import cli
    from include.album.providers.vision import LocalVision

    poison = hashlib.sha256((pipeline.archive / "media" / str(_file_id(f"photo:{LAB}:106"))).read_bytes()).hexdigest()
    analyse = LocalVision.analyse

    def crash_on_the_poison_image(self, data):
        # Injected: the vision engine crashes on one image of the street-food album, every time.
        if hashlib.sha256(data).hexdigest() == poison:
            raise RuntimeError("tesseract crashed: Segmentation fault")
        return analyse(self, data)

    monkeypatch.setattr(LocalVision, "analyse", crash_on_the_poison_image)
    fast_retries(dagbag, retries=1, seconds=1)
    state, dag_run = run_dag(dagbag)
    assert state == "success"
    poisoned = conn.execute("SELECT id FROM media_groups WHERE grouped_id = %s AND channel_id = %s",
                            (STREET_FOOD, LAB)).fetchone()["id"]
    statuses = {r["id"]: r["status"] for r in conn.execute("SELECT id, status FROM media_groups")}
    assert statuses.pop(poisoned) == "open" and set(statuses.values()) == {"assembled"}
    failure = conn.execute("SELECT * FROM album_failures WHERE album_id = %s", (poisoned,)).fetchone()
    assert failure["quarantined_at"] is not None and failure["step"] == "vision" and failure["attempts"] == 2
    assert "tesseract crashed" in failure["error"]
    assert db.fetch_all(conn, "albums_needing_work") == []  # later runs leave it alone

    state, rerun = run_dag(dagbag)
    assert state == "success"
    assert conn.execute("SELECT attempts FROM album_failures WHERE album_id = %s", (poisoned,)).fetchone()[
        "attempts"] == 2
    assert cli.main(["--dsn", pg.dsn, "quarantine", "list"]) == 0
    assert f"album {poisoned} @album_lab" in capsys.readouterr().out

    monkeypatch.setattr(LocalVision, "analyse", analyse)  # the cause is fixed
    assert cli.main(["--dsn", pg.dsn, "quarantine", "requeue", str(poisoned)]) == 0
    assert f"re-queued 1 album(s): {poisoned}" in capsys.readouterr().out
    assert run_dag(dagbag)[0] == "success"
    assert conn.execute("SELECT status FROM media_groups WHERE id = %s", (poisoned,)).fetchone()["status"] == \
        "assembled"
