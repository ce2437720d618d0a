"""Qdrant (local mode and :memory:) and the album graph (a real FalkorDB server), from the sample archive."""

import os
from datetime import UTC, datetime, timedelta

import pytest
from qdrant_client import QdrantClient, models

from devtools.sample import LAB, MIXED, NEWS, SAMPLE_START, register_sample
from include.album.providers.embeddings import default_embedder
from include.album.providers.vision import LocalVision
from include.album.source.archive import ArchiveTelegramClient
from include.album.steps.albums import process_album
from include.album.steps.assembly import AlbumSeen, load_album
from include.album.steps.indexing import AlbumIndexer, index_loose_posts, remove_deleted
from include.album.steps.ingest import ingest_channel
from include.album.steps.writes import regroup_albums
from include.album.stores import db, graph
from include.album.stores.qdrant import IndexMismatch, QdrantIndex, album_point_id, post_point_id
from tests import graph_queries
from tests.helpers import MemoVision, ingest_all

pytestmark = pytest.mark.integration

TIMEOUT = timedelta(minutes=30)
COMPASS = 7000000000000000003


@pytest.fixture(scope="module")
def provider():
    return MemoVision(LocalVision())


@pytest.fixture(params=["path", "memory"])
def qindex(request, tmp_path):
    client = QdrantClient(path=str(tmp_path / "qdrant")) if request.param == "path" else QdrantClient(":memory:")
    index = QdrantIndex(client, "albums", default_embedder())
    index.ensure_collection()
    yield index
    client.close()


def neo4j_backend():
    from neo4j import GraphDatabase

    driver = GraphDatabase.driver(os.environ["NEO4J_URI"], auth=(os.environ.get("NEO4J_USER", "neo4j"),
                                                                 os.environ.get("NEO4J_PASSWORD", "")))
    backend = graph.Neo4jGraph(driver)
    backend.run("MATCH (n) WHERE n:Tenant OR n:Channel OR n:Album OR n:Post OR n:Label DETACH DELETE n")
    return backend


@pytest.fixture(params=["falkordb", pytest.param("neo4j", marks=pytest.mark.skipif(
    not os.environ.get("NEO4J_URI"), reason="set NEO4J_URI (e.g. the compose Neo4j) to cover the Neo4j backend"))])
def graph_backend(request, falkor_graph):
    backend = falkor_graph if request.param == "falkordb" else neo4j_backend()
    backend.ensure_schema()
    backend.ensure_schema()  # idempotent
    return backend


def run_pipeline(conn, store, provider, indexer) -> None:
    for row in db.fetch_all(conn, "albums_needing_work"):
        process_album(conn, store, AlbumSeen(None), provider, row["id"], TIMEOUT, datetime.now(UTC), indexer)
    index_loose_posts(conn, store, provider, indexer.qindex)
    remove_deleted(conn, store, indexer.qindex, indexer.graph)


@pytest.fixture
def indexed(conn, store, settings, sample_archive, provider, qindex, falkor_graph):
    path, expected = sample_archive
    register_sample(conn, expected)
    ingest_all(conn, store, path, expected, settings)
    falkor_graph.ensure_schema()
    indexer = AlbumIndexer(conn, qindex, falkor_graph, provider.key)
    run_pipeline(conn, store, provider, indexer)
    return expected, indexer


def albums(conn) -> list[dict]:
    return db.fetch_all(conn, "albums_with_items")


def point_count(qindex, **match) -> int:
    must = [models.FieldCondition(key=k, match=models.MatchValue(value=v)) for k, v in match.items()]
    flt = models.Filter(must=must) if must else None
    return qindex.client.count(qindex.collection, count_filter=flt, exact=True).count


def test_post_and_album_points_carry_the_payload(conn, qindex, indexed):
    stored = albums(conn)
    assert point_count(qindex, kind="album") == len(stored)
    album = stored[0]
    [point] = qindex.client.retrieve("albums", [album_point_id(album["id"])], with_payload=True)
    payload = point.payload
    assert payload["album_id"] == album["id"] and isinstance(payload["album_id"], int)
    assert payload["channel_id"] == album["channel_id"] and payload["kind"] == "album"
    assert payload["tenant_ids"] == ["acme"] and payload["posted_at"].startswith("2026-01-05T10:01")
    assert payload["labels"] and "Evening at the harbour" in payload["text"]
    [item] = qindex.client.retrieve("albums", [post_point_id(LAB, 103)], with_payload=True)
    assert (item.payload["kind"], item.payload["album_id"], item.payload["position"]) == ("post", album["id"], 1)
    assert "Harbour. Lights" in item.payload["text"]  # the post's own vision text (OCR)
    [single] = qindex.client.retrieve("albums", [post_point_id(LAB, 105)], with_payload=True)
    assert "album_id" not in single.payload and "Привет" in single.payload["text"]


def test_filters_by_album_tenant_and_outside_albums(conn, qindex, indexed):
    album = albums(conn)[1]
    hits = qindex.search("acme", "food market", album_id=album["id"], limit=20)
    assert hits and {h.album_id for h in hits} == {album["id"]}
    assert 1 < len(hits) <= 1 + album["items_count"]  # the album point and its item posts that match
    outside = qindex.search("acme", "news", outside_albums=True, limit=50)
    assert outside and all(h.album_id is None and h.kind == "post" for h in outside)
    only_albums = qindex.search("globex", "city", kind="album", limit=50)
    assert only_albums and all(h.kind == "album" and h.channel_id in (NEWS, MIXED) for h in only_albums)
    russian = qindex.search("acme", "город", labels=["russian-text"], limit=50)
    assert russian and all("russian-text" in h.labels for h in russian)


def test_tenant_isolation_whatever_filters_the_caller_passes(conn, qindex, indexed):
    lab_only = models.Filter(should=[models.FieldCondition(key="tenant_ids", match=models.MatchValue(value="acme")),
                                     models.FieldCondition(key="channel_id", match=models.MatchValue(value=LAB))])
    for extra in (None, lab_only, models.Filter(must_not=[models.FieldCondition(
            key="tenant_ids", match=models.MatchValue(value="globex"))])):
        hits = qindex.search("globex", "Evening at the harbour sunset", extra=extra, limit=100)
        assert all(h.channel_id != LAB for h in hits)  # Album Lab is acme's only
    assert all(h.channel_id != MIXED for h in qindex.search("acme", "drone footage", limit=100))
    with pytest.raises(ValueError, match="invalid tenant id"):
        qindex.search("acme' OR '1'='1", "x")


def test_search_finds_the_album_whose_caption_is_queried(conn, qindex, indexed):
    for album in albums(conn):
        tenant = "acme" if album["channel_id"] in (LAB, NEWS) else "globex"
        top = qindex.search(tenant, album["caption_text"], kind="album", limit=1)
        assert top[0].album_id == album["id"], album["caption_text"]


def test_rerun_keeps_the_same_points(conn, store, qindex, indexed, provider):
    _, indexer = indexed
    before = point_count(qindex)
    conn.execute("UPDATE media_groups SET meta = meta - 'index'")
    conn.execute("UPDATE posts SET indexed_at = NULL")
    run_pipeline(conn, store, provider, indexer)
    assert point_count(qindex) == before


def test_late_item_updates_the_album_point_and_leaves_no_stale_points(conn, store, settings, sample_archive,
                                                                      provider, qindex, falkor_graph):
    path, expected = sample_archive
    register_sample(conn, expected)
    indexer = AlbumIndexer(conn, qindex, falkor_graph, provider.key)
    ingest_channel(conn, store, ArchiveTelegramClient(path, as_of=SAMPLE_START + timedelta(minutes=10, seconds=3)),
                   LAB, settings)
    run_pipeline(conn, store, provider, indexer)
    compass = conn.execute("SELECT id FROM media_groups WHERE grouped_id = %s", (COMPASS,)).fetchone()["id"]
    assert point_count(qindex, album_id=compass, kind="post") == 2

    ingest_channel(conn, store, ArchiveTelegramClient(path), LAB, settings)
    run_pipeline(conn, store, provider, indexer)
    [point] = qindex.client.retrieve("albums", [album_point_id(compass)], with_payload=True)
    assert point.payload["items_count"] == 3 and "East" in point.payload["text"]
    assert point_count(qindex, album_id=compass, kind="post") == 3

    conn.execute("UPDATE posts SET deleted_at = now() WHERE channel_id = %s AND message_id = 113", (LAB,))
    with conn.transaction():
        assert regroup_albums(conn, LAB, [COMPASS]) == ([compass], [])
    run_pipeline(conn, store, provider, indexer)
    assert point_count(qindex, album_id=compass, kind="post") == 2
    assert not qindex.client.retrieve("albums", [post_point_id(LAB, 113)])
    assert [p["message_id"] for p in graph_queries.album_posts(falkor_graph, compass)] == [112, 114]


def test_deleted_post_loses_its_point(conn, store, qindex, indexed, provider):
    _, indexer = indexed
    assert qindex.client.retrieve("albums", [post_point_id(LAB, 101)])
    conn.execute("UPDATE posts SET deleted_at = now() WHERE channel_id = %s AND message_id = 101", (LAB,))
    run_pipeline(conn, store, provider, indexer)
    assert not qindex.client.retrieve("albums", [post_point_id(LAB, 101)])


def test_changing_the_embedding_provider_is_a_clear_error(qindex):
    class Other:
        key, dim = "openai:text-embedding-3-small", 1536

    with pytest.raises(IndexMismatch, match="512-d vectors from local:use-multilingual-512"):
        QdrantIndex(qindex.client, "albums", Other()).ensure_collection()


def test_graph_model_and_the_three_read_queries(conn, store, settings, sample_archive, provider, qindex,
                                                graph_backend):
    path, expected = sample_archive
    register_sample(conn, expected)
    ingest_all(conn, store, path, expected, settings)
    indexer = AlbumIndexer(conn, qindex, graph_backend, provider.key)
    run_pipeline(conn, store, provider, indexer)
    first = graph_queries.counts(graph_backend)
    stored = {(a["channel_id"], a["grouped_id"]): a for a in albums(conn)}

    lab = graph_queries.albums_of_channel(graph_backend, LAB)
    assert [a["grouped_id"] for a in lab] == [7000000000000000003, 7000000000000000002, 7000000000000000001]
    assert all(a["expected_items"] == a["actual_items"] for a in lab)
    assert [a["actual_items"] for a in lab] == [3, 4, 3]

    mixed = stored[(LAB, 7000000000000000002)]
    posts = graph_queries.album_posts(graph_backend, mixed["id"])
    assert [(p["position"], p["message_id"]) for p in posts] == list(enumerate([106, 107, 108, 109]))

    wanted = ["Russian-Text", "Text"]
    found = {a["album_id"] for a in graph_queries.albums_by_labels(graph_backend, wanted)}
    assert found == {a["id"] for a in albums(conn)
                     if {"russian-text", "text"} <= set(a["meta"]["enrichment"]["vision_labels"])}
    assert stored[(NEWS, 7000000000000000001)]["id"] in found

    conn.execute("UPDATE media_groups SET meta = meta - 'index'")
    run_pipeline(conn, store, provider, indexer)
    assert graph_queries.counts(graph_backend) == first  # MERGE only: a rerun adds nothing
    album = load_album(conn, mixed["id"])
    assert album.is_indexed


def test_search_command_prints_album_channel_date_score_and_text(pg, conn, store, settings, sample_archive, provider,
                                                                 tmp_path, capsys):
    from include.album.admin.cli import main

    path, expected = sample_archive
    register_sample(conn, expected)
    ingest_all(conn, store, path, expected, settings)
    client = QdrantClient(path=str(tmp_path / "qdrant"))
    index = QdrantIndex(client, "albums", default_embedder())
    index.ensure_collection()
    run_pipeline(conn, store, provider, AlbumIndexer(conn, index, None, provider.key))
    client.close()  # local mode: one process (client) at a time

    common = ["--dsn", pg.dsn, "--tenant", "acme", "--collection", "albums", "--qdrant-path", str(tmp_path / "qdrant")]
    assert main(["search", "Street food market tour", "--albums-only", "--limit", "1", *common]) == 0
    line = capsys.readouterr().out.strip()
    mixed = conn.execute("SELECT id FROM media_groups WHERE grouped_id = 7000000000000000002").fetchone()["id"]
    assert f"album {mixed}" in line and "album @album_lab" in line and "2026-01-05T10:06" in line
    assert "Street food market tour" in line

    assert main(["search", "новости", "--outside-albums", *common]) == 0
    assert all("no album" in row for row in capsys.readouterr().out.strip().splitlines())


def test_an_empty_query_is_refused_and_a_reader_never_creates_a_collection(qindex):
    with pytest.raises(ValueError, match="empty query"):
        qindex.search("acme", " \n")
    missing = QdrantIndex(qindex.client, "never_indexed", qindex.embedder)
    with pytest.raises(LookupError, match="Qdrant has no collection 'never_indexed'"):
        missing.require_collection()
    assert not qindex.client.collection_exists("never_indexed")
    qindex.require_collection()  # the indexed one is there, with the configured embedding


def test_a_query_that_matches_nothing_has_no_hits_and_an_album_is_one_hit(conn, qindex, indexed):
    assert qindex.search("acme", "purple elephant tax refund on mars", limit=10) == []
    for query in ("food market", "город", "harbour lights"):
        hits = qindex.search("acme", query, limit=10)
        albums_hit = [h.album_id for h in hits if h.album_id is not None]
        assert len(albums_hit) == len(set(albums_hit)), query  # never twice in one list
        assert all(h.score >= qindex.embedder.score_floor for h in hits)
    within = qindex.search("acme", "food market", album_id=albums(conn)[1]["id"], limit=20)
    assert len(within) > 1  # inside one album its points are the hits


def test_the_score_floor_answers_the_retrieval_set_as_calibrated():
    """The ru/en set as Qdrant points: relevant documents stay findable above the floor, and most
    queries about nothing get no results (the figures: `python -m devtools embeddings`)."""
    import json
    import uuid
    from pathlib import Path

    from include.album.stores.qdrant import IndexDoc

    data = json.loads((Path(__file__).parents[2] / "data" / "retrieval_ru_en.json").read_text(encoding="utf-8"))
    client = QdrantClient(":memory:")
    index = QdrantIndex(client, "retrieval", default_embedder())
    index.ensure_collection()
    index.upsert([IndexDoc(str(uuid.uuid5(uuid.NAMESPACE_URL, d["id"])), d["text"], {
        "kind": "post", "channel_id": 1, "tenant_ids": ["t"], "posted_at": "2026-01-05T10:00:00+00:00"})
        for d in data["documents"]])
    doc_of = {d["text"][:200]: d["id"] for d in data["documents"]}
    found = sum(1 for q in data["queries"]
                if q["relevant"][0] in {doc_of[h.text[:200]] for h in index.search("t", q["text"], limit=5)})
    nothing = sum(1 for q in data["no_match"] if index.search("t", q["text"], limit=5) == [])
    client.close()
    assert found >= 0.9 * len(data["queries"]) and nothing >= 0.8 * len(data["no_match"])


@pytest.fixture
def textless_album(conn, store, settings, archive_copy, provider, qindex, falkor_graph):
    """The sample with Album Lab's first album made a photo album with no caption and no text in
    its photos (plain gradients: OCR finds nothing), processed and indexed by the real pipeline."""
    import io

    from PIL import Image

    from devtools.archive_edits import append_messages
    from include.album.source.archive import ArchiveSender

    path, expected = archive_copy
    history = {m.id: m for m in ArchiveSender(path).history(LAB).messages}
    for number, message_id in enumerate((102, 103, 104)):
        message = history[message_id]
        message.message, message.edit_date = "", message.date + timedelta(minutes=1)
        append_messages(path, LAB, [message])
        gradient = Image.linear_gradient("L").resize((640, 480)).convert("RGB")
        gradient = Image.merge("RGB", [band.point(lambda v, n=number: (v + 40 * n) % 256) for band in gradient.split()])
        buffer = io.BytesIO()
        gradient.save(buffer, format="JPEG")
        (path / "media" / str(message.photo.id)).write_bytes(buffer.getvalue())
    register_sample(conn, expected)
    ingest_all(conn, store, path, expected, settings)
    falkor_graph.ensure_schema()
    indexer = AlbumIndexer(conn, qindex, falkor_graph, provider.key)
    run_pipeline(conn, store, provider, indexer)
    return conn.execute("SELECT * FROM media_groups WHERE channel_id = %s AND grouped_id = %s",
                        (LAB, 7000000000000000001)).fetchone()


def test_a_captionless_textless_photo_album_has_a_point_found_by_its_id_and_labels(conn, qindex, textless_album):
    album = textless_album
    assert not album["caption_text"] and album["meta"]["index"]["has_text"] is False
    [point] = qindex.client.retrieve("albums", [album_point_id(album["id"])], with_payload=True)
    assert point.payload["has_text"] is False and point.payload["text"] == ""
    assert point.payload["album_id"] == album["id"] and point.payload["labels"]

    by_id = qindex.browse("acme", album_id=album["id"])
    assert {h.kind for h in by_id} == {"album", "post"} and {h.album_id for h in by_id} == {album["id"]}
    positions = [h.position for h in by_id[1:]]
    assert by_id[0].kind == "album" and positions == sorted(positions) == list(range(album["items_count"]))
    assert {h.channel_username for h in by_id} == {"album_lab"}
    label = point.payload["labels"][0]
    assert album["id"] in {h.album_id for h in qindex.browse("acme", labels=[label], kind="album")}
    assert qindex.browse("globex", album_id=album["id"]) == []  # still within the tenant

    # The run report counts the points actually written, and the albums without searchable text.
    counts = db.fetch_one(conn, "run_report", {"since": None})
    assert counts["albums_indexed"] == point_count(qindex, kind="album") == len(albums(conn))
    assert counts["posts_indexed"] == point_count(qindex, kind="post")
    assert counts["albums_without_text"] == 1
