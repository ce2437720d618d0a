"""A hostile input corpus through the whole ``telegram_albums`` DAG (dag.test on real Postgres, moto
S3, Redis, Qdrant local mode and FalkorDB).

Injected (``tests/hostile.py``): a 4,096-character caption of emoji, RTL and zero-width
characters; SQL, Cypher and Jinja metacharacters in texts, usernames and titles; a grouped_id
with no media; a service message inside an album's id range and one as a channel's newest
message; a poll, a location and a web page preview; a 41 MB document; truncated JPEGs; PNG
decompression bombs as a photo and as an ``image/png`` document; NUL characters in texts and
CR/LF or NUL in documents' MIME types. Checked: the run succeeds with no task retried, each
message is a post (its text byte for byte, or with a recorded alteration) or a skip with a
reason, each broken image has a terminal vision skip, every album is assembled and published,
the normal posts and albums are all there, and no metacharacter was executed or rendered anywhere.
"""

from __future__ import annotations

import json

import pytest

from devtools.sample import differences_from_expectation
from include.album.stores import db
from include.album.stores.qdrant import album_point_id, post_point_id
from tests.dag.conftest import forget_album_seen, run_dag, use_archive
from tests.helpers import TABLES, s3_keys
from tests.hostile import (
    ALBUM_IDS,
    BIG_DOCUMENT,
    BOMB_DOCUMENT,
    BROKEN_ALBUM,
    CRLF_MIME_DOCUMENT,
    CYPHER_POST,
    CYPHER_TEXT,
    GEO,
    HOSTILE,
    HOSTILE_TITLE,
    HOSTILE_USERNAME,
    JINJA_POST,
    JINJA_TEXT,
    LONG_CAPTION_ALBUM,
    NUL_MIME_DOCUMENT,
    NUL_TEXT,
    OTHER,
    OTHER_SERVICE_LAST,
    OTHER_TITLE,
    OTHER_USERNAME,
    POLL,
    SERVICE_ALBUM,
    SERVICE_INSIDE,
    SQL_POST,
    SQL_TEXT,
    TEXT_ONLY_ALBUM,
    TRUNCATED_LOOSE,
    WEBPAGE,
    build_hostile_archive,
    long_caption,
)

pytestmark = [pytest.mark.dag, pytest.mark.integration, pytest.mark.faults]

# What `{{ var.value.secret }}` in the username would print if anything rendered it as a template.
SECRET = "rendered-secret-7f3a"


@pytest.fixture
def hostile(monkeypatch, airflow_db, pg, conn, s3_endpoint, bucket, tmp_path, falkordb_port):
    """The pipeline's connections pointed at the hostile archive and this test's own stores."""
    path = tmp_path / "hostile-archive"
    setup = use_archive(monkeypatch, archive=path, expected=build_hostile_archive(path), pg=pg, conn=conn,
                        s3_endpoint=s3_endpoint, bucket=bucket, tmp_path=tmp_path, falkordb_port=falkordb_port,
                        AIRFLOW_VAR_SECRET=SECRET)
    yield setup
    forget_album_seen()


@pytest.fixture
def graph_store(hostile, falkordb_port):
    from falkordb import FalkorDB

    from include.album.stores.graph import FalkorGraph

    backend = FalkorGraph(FalkorDB(host="127.0.0.1", port=falkordb_port), hostile.graph_name)
    yield backend
    backend.graph.delete()
    backend.close()


def task_tries(dag_run) -> dict[tuple[str, int], tuple[str, int]]:
    """(task id, map index) -> (state, try number) of every task instance of the run."""
    from airflow.models import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = session.query(TaskInstance.task_id, TaskInstance.map_index, TaskInstance.state,
                             TaskInstance.try_number).filter(TaskInstance.run_id == dag_run.run_id).all()
    return {(r[0], r[1]): (getattr(r[2], "value", r[2]), r[3]) for r in rows}


def rendered_labels(dag_run, task_id: str) -> list[str]:
    from airflow.models import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = session.query(TaskInstance.rendered_map_index).filter(
            TaskInstance.run_id == dag_run.run_id, TaskInstance.task_id == task_id).all()
    return sorted(r[0] for r in rows)


def test_hostile_corpus_is_stored_or_skipped_with_a_reason_and_nothing_else_is_lost(
        dagbag, hostile, conn, s3_client, bucket, graph_store):
    expected = hostile.expected
    state, dag_run = run_dag(dagbag)
    assert state == "success"
    assert set(task_tries(dag_run).values()) == {("success", 1)}  # nothing failed, not even once
    assert conn.execute("SELECT count(*) AS n FROM album_failures").fetchone()["n"] == 0

    # No injection: every table is there, holding exactly the corpus.
    for table in TABLES:
        assert conn.execute("SELECT to_regclass(%s) AS t", (table,)).fetchone()["t"] is not None, table
    channels = {r["id"]: r for r in conn.execute("SELECT * FROM channels")}
    assert {c: (r["username"], r["title"]) for c, r in channels.items()} == {
        HOSTILE: (HOSTILE_USERNAME, HOSTILE_TITLE), OTHER: (OTHER_USERNAME, OTHER_TITLE)}
    # Labels in the UI are the usernames verbatim (no SECRET): stored text is never rendered as a template.
    assert rendered_labels(dag_run, "ingest") == sorted(f"@{u}" for u in (HOSTILE_USERNAME, OTHER_USERNAME))
    albums = db.fetch_all(conn, "albums_with_items")
    assert rendered_labels(dag_run, "album.vision") == sorted(f"@{a['username']} album {a['id']}" for a in albums)

    # Every message is a post with its text byte for byte, or a skip with a reason; nothing else.
    assert differences_from_expectation(conn, expected) == []
    posts = {(r["channel_id"], r["message_id"]): r for r in conn.execute("SELECT * FROM posts")}
    skips = {(r["channel_id"], r["ref"], r["reason"]): r["detail"] for r in conn.execute("SELECT * FROM ingest_skips")}
    assert set(skips) == {(s["channel_id"], s["ref"], s["reason"]) for s in expected["skips"]}
    for (channel_id, ref, _), detail in skips.items():
        assert f"channel {channel_id} message {ref.split(':')[1]}" in detail
    for channel_id, message_ids in expected["message_ids"].items():
        for message_id in message_ids:
            skipped = {reason for c, ref, reason in skips if (c, ref) == (channel_id, f"message:{message_id}")}
            assert (channel_id, message_id) in posts or skipped, f"{channel_id}/{message_id} was lost"
    for channel_id, message_id in ((HOSTILE, SERVICE_INSIDE), (OTHER, OTHER_SERVICE_LAST)):
        assert (channel_id, message_id) not in posts
        assert (channel_id, f"message:{message_id}", "service_message") in skips
    assert {m: posts[(HOSTILE, m)]["media_skip_reason"] for m in (POLL, GEO, WEBPAGE, BIG_DOCUMENT)} == {
        POLL: "unsupported_media", GEO: "unsupported_media", WEBPAGE: "unsupported_media",
        BIG_DOCUMENT: "media_too_large"}
    caption = long_caption()
    assert len(caption) == 4096 and {"\u200b", "\u200d", "\ufeff", "\u202e"} <= set(caption)
    assert posts[(HOSTILE, LONG_CAPTION_ALBUM[0])]["text"].encode() == caption.encode()
    assert [posts[(HOSTILE, m)]["text"] for m in (SQL_POST, CYPHER_POST, JINJA_POST)] == [SQL_TEXT, CYPHER_TEXT,
                                                                                        JINJA_TEXT]
    # Stored with what Postgres and S3 cannot carry replaced, and the alteration recorded (skips above).
    assert posts[(HOSTILE, NUL_TEXT)]["text"] == "NUL\ufffdinside\ufffd \u0645\u0631"
    for message_id in (CRLF_MIME_DOCUMENT, NUL_MIME_DOCUMENT):
        row = posts[(HOSTILE, message_id)]
        assert (row["media_mime"], row["media_skip_reason"]) == ("application/octet-stream", None)
        key = conn.execute("SELECT s3_key FROM media_objects WHERE sha256 = %s", (row["media_sha256"],)).fetchone()
        head = s3_client.head_object(Bucket=bucket, Key=key["s3_key"])
        assert head["ContentType"] == "application/octet-stream" and head["ContentLength"] == row["media_size"]
    assert channels[HOSTILE]["hwm"] == max(expected["message_ids"][HOSTILE])
    assert channels[OTHER]["hwm"] == OTHER_SERVICE_LAST

    # Vision: each broken image is a terminal skip with its reason, each normal image a result.
    vision = {r["sha256"]: r for r in conn.execute("SELECT * FROM vision_results")}
    for sha256, reason in expected["vision_skips"].items():
        assert (vision[sha256]["skip_reason"], vision[sha256]["result"]) == (reason, None)
    broken = {posts[(HOSTILE, m)]["media_sha256"] for m in (*BROKEN_ALBUM[1:], BOMB_DOCUMENT, TRUNCATED_LOOSE)}
    assert broken == set(expected["vision_skips"])
    images = {r["media_sha256"] for r in posts.values() if r["media_sha256"] and r["media_kind"] == "photo"}
    images.add(posts[(HOSTILE, BOMB_DOCUMENT)]["media_sha256"])
    assert images <= set(vision)
    assert all(vision[sha]["result"] for sha in images - broken)

    # Albums: every one assembled and published for each subscribed tenant, skips named per item.
    assert {a["status"] for a in albums} == {"assembled"}
    assert {(a["channel_id"], a["grouped_id"]) for a in albums} == {
        (OTHER if name == "other" else HOSTILE, grouped_id) for name, grouped_id in ALBUM_IDS.items()}
    by_grouped = {a["grouped_id"]: a for a in albums}
    assert by_grouped[ALBUM_IDS["service"]]["message_ids"] == list(SERVICE_ALBUM)
    assert by_grouped[ALBUM_IDS["text_only"]]["message_ids"] == list(TEXT_ONLY_ALBUM)
    assert by_grouped[ALBUM_IDS["long_caption"]]["caption_text"] == caption
    tenants = {(t, c) for t, subscribed in expected["tenants"].items() for c in subscribed}
    keys = set(s3_keys(s3_client, bucket))
    item_skips = {f"{a['channel_id']}:{m}": "no_media" for a in albums if a["grouped_id"] == ALBUM_IDS["text_only"]
                  for m in a["message_ids"]} | expected["item_skips"]
    for album in albums:
        enrichment = album["meta"]["enrichment"]
        assert enrichment["content_hash"] == album["content_hash"]
        assert set(enrichment["s3_keys"]) == {t for t, c in tenants if c == album["channel_id"]}
        for tenant, key in enrichment["s3_keys"].items():
            assert key in keys
            document = json.loads(s3_client.get_object(Bucket=bucket, Key=key)["Body"].read())
            assert (document["album_id"], document["tenant_id"]) == (album["id"], tenant)
        for item in enrichment["items"]:
            ref = f"{album['channel_id']}:{item['message_id']}"
            assert (item["status"], item["skip_reason"]) == (
                ("skipped", item_skips[ref]) if ref in item_skips else ("analyzed", None)), ref

    # Search index: a point for every post with text and every captioned album, the caption verbatim.
    from qdrant_client import QdrantClient

    wanted = {post_point_id(c, m): (c, m) for (c, m), r in posts.items() if r["text"].strip()}
    wanted |= {album_point_id(a["id"]): a["id"] for a in albums if a["caption_text"]}
    client = QdrantClient(path=str(hostile.qdrant_path))
    try:
        found = {str(p.id): p.payload for p in client.retrieve(hostile.collection, list(wanted), with_payload=True)}
    finally:
        client.close()
    assert set(found) == set(wanted)
    assert found[album_point_id(by_grouped[ALBUM_IDS["long_caption"]]["id"])]["text"].startswith(caption[:2000])
    assert found[post_point_id(HOSTILE, JINJA_POST)]["text"] == JINJA_TEXT

    # Graph: the channels with their hostile names verbatim, every album with its posts in order.
    nodes = graph_store.run("MATCH (c:Channel) RETURN c.channel_id AS id, c.username AS username, c.title AS title")
    assert {n["id"]: (n["username"], n["title"]) for n in nodes} == {
        HOSTILE: (HOSTILE_USERNAME, HOSTILE_TITLE), OTHER: (OTHER_USERNAME, OTHER_TITLE)}
    graph_albums = graph_store.run(
        "MATCH (:Channel)-[:HAS_ALBUM]->(a:Album)-[r:CONTAINS]->(p:Post) "
        "RETURN a.album_id AS album_id, p.message_id AS message_id, p.text AS text ORDER BY a.album_id, r.position")
    assert [(g["album_id"], g["message_id"]) for g in graph_albums] == [
        (a["id"], m) for a in albums for m in a["message_ids"]]
    assert next(g["text"] for g in graph_albums if g["message_id"] == LONG_CAPTION_ALBUM[0]) == caption[:1000]
