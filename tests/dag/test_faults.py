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
from qdrant_client import QdrantClient

from include.album import graph
from include.album.archive import ArchiveSender, append_messages, deletion_marker
from include.album.graph import FalkorGraph
from include.album.index import album_point_id, post_point_id
from include.album.sample import LAB, MIXED, NEWS, SAMPLE_START
from tests.dag.conftest import run_dag, xcom
from tests.helpers import s3_keys, store_state

pytestmark = [pytest.mark.dag, pytest.mark.integration, pytest.mark.faults]

SHARED = 7000000000000000001
STREET_FOOD = 7000000000000000002
NEWS_DOCS = 7000000000000000005
# A daily refresh run whose 48-hour look-back covers the sample's span.
REFRESH_RUN = SAMPLE_START.replace(hour=3, minute=30) + timedelta(days=1)


class Stores:
    """Read access to the test's stores, opened only between runs (Qdrant local mode holds a lock)."""

    def __init__(self, pipeline, conn, s3_client, bucket, falkordb_port):
        from falkordb import FalkorDB

        self.pipeline, self.conn, self.s3, self.bucket = pipeline, conn, s3_client, bucket
        self.graph = FalkorGraph(FalkorDB(host="127.0.0.1", port=falkordb_port), pipeline.graph_name)

    def qdrant(self) -> QdrantClient:
        return QdrantClient(path=str(self.pipeline.qdrant_path))

    def state(self) -> dict:
        client = self.qdrant()
        try:
            return store_state(self.conn, self.s3, self.bucket, client, self.pipeline.collection, self.graph)
        finally:
            client.close()

    def points(self, ids: list[str]) -> dict[str, dict]:
        client = self.qdrant()
        try:
            return {str(p.id): p.payload for p in client.retrieve(self.pipeline.collection, ids, with_payload=True)}
        finally:
            client.close()

    def album(self, channel_id: int, grouped_id: int) -> dict:
        return self.conn.execute("SELECT * FROM media_groups WHERE channel_id = %s AND grouped_id = %s",
                                 (channel_id, grouped_id)).fetchone()


@pytest.fixture
def stores(pipeline, conn, s3_client, bucket, falkordb_port):
    found = Stores(pipeline, conn, s3_client, bucket, falkordb_port)
    yield found
    found.graph.graph.delete()
    found.graph.close()


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
    assert not graph.album_posts(stores.graph, news_docs["id"])
    assert [p["message_id"] for p in graph.album_posts(stores.graph, shared_news["id"])] == [202, 204, 205]
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
