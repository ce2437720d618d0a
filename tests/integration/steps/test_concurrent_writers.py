"""The two DAGs writing the same channel and albums at once (Postgres, moto S3, Qdrant): each
interleaving that could lose an update, made to happen deterministically. The same under a real
scheduler, both DAGs overlapping, is in tests/e2e/test_airflow_e2e.py."""

import json
import threading
from datetime import UTC, datetime, timedelta

import pytest
from qdrant_client import QdrantClient

from devtools.archive_edits import append_messages
from devtools.sample import LAB, register_sample
from include.album.providers.embeddings import default_embedder
from include.album.providers.vision import LocalVision
from include.album.source.archive import ArchiveSender, ArchiveTelegramClient
from include.album.steps import indexing
from include.album.steps.albums import process_album
from include.album.steps.assembly import AlbumSeen, albums_locked, enrich_album, load_album
from include.album.steps.edits import refresh_channels
from include.album.steps.indexing import AlbumIndexer, index_loose_posts
from include.album.steps.ingest import ingest_channels
from include.album.stores import db
from include.album.stores.qdrant import QdrantIndex, album_point_id, post_point_id
from tests.helpers import MemoVision

pytestmark = pytest.mark.integration

TIMEOUT = timedelta(minutes=30)
STREET_FOOD = 7000000000000000002  # LAB album 106-109; its caption is on 108


@pytest.fixture(scope="module")
def provider():
    return MemoVision(LocalVision())


@pytest.fixture
def qindex(tmp_path):
    client = QdrantClient(path=str(tmp_path / "qdrant"))
    index = QdrantIndex(client, "albums", default_embedder())
    index.ensure_collection()
    yield index
    client.close()


@pytest.fixture
def published(conn, store, settings, archive_copy, provider, qindex):
    """The sample's Album Lab ingested, every album published and indexed."""
    path, expected = archive_copy
    register_sample(conn, expected)
    ingest_channels(conn, store, ArchiveTelegramClient(path), [LAB], settings)
    indexer = AlbumIndexer(conn, qindex, None, provider.key)
    for row in db.fetch_all(conn, "albums_needing_work"):
        process_album(conn, store, AlbumSeen(None), provider, row["id"], TIMEOUT, datetime.now(UTC), indexer)
    index_loose_posts(conn, store, provider, qindex)
    return path, indexer


def edit(archive, message_id: int, text: str, minutes_later: int = 30):
    message = next(m for m in ArchiveSender(archive).history(LAB).messages if m.id == message_id)
    message.message, message.edit_date = text, message.date + timedelta(minutes=minutes_later)
    append_messages(archive, LAB, [message])


def refresh(conn, store, settings, archive) -> None:
    refresh_channels(conn, store, ArchiveTelegramClient(archive), [LAB], settings,
                     datetime(2026, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))


def album_of(conn, grouped_id: int):
    row = conn.execute("SELECT id FROM media_groups WHERE channel_id = %s AND grouped_id = %s",
                       (LAB, grouped_id)).fetchone()
    return load_album(conn, row["id"])


def test_an_enrichment_computed_for_an_older_composition_never_replaces_the_newer_one(
        conn, store, settings, published, provider, s3_client, bucket):
    path, indexer = published
    stale = album_of(conn, STREET_FOOD)
    # The refresh DAG stores an edit of the album's caption and publishes the new composition ...
    edit(path, 108, "Street food, the long version")
    refresh(conn, store, settings, path)
    process_album(conn, store, AlbumSeen(None), provider, stale.id, TIMEOUT, datetime.now(UTC), indexer)
    current = load_album(conn, stale.id)
    assert current.content_hash != stale.content_hash and current.is_indexed
    # ... while telegram_albums' enrich and index steps still hold the album as it was.
    assert enrich_album(conn, store, AlbumSeen(None), stale) is None
    indexer.index([stale])  # indexes the album as it is now, not as the step loaded it

    assert load_album(conn, stale.id).meta["enrichment"] == current.meta["enrichment"]
    [key] = current.meta["enrichment"]["s3_keys"].values()
    summary = json.loads(s3_client.get_object(Bucket=bucket, Key=key)["Body"].read())
    assert summary["assembled_at"] == current.meta["enrichment"]["assembled_at"]  # the newer one's, not replaced
    [point] = indexer.qindex.client.retrieve(indexer.qindex.collection, [album_point_id(stale.id)], with_payload=True)
    assert "Street food, the long version" in point.payload["text"]


def test_an_album_recomposed_while_its_summaries_are_written_ends_with_the_newer_summaries(
        conn, store, settings, published, provider, s3_client, bucket, monkeypatch):
    from include.album.steps import assembly

    path, indexer = published
    album = album_of(conn, STREET_FOOD)
    conn.execute("UPDATE media_groups SET meta = meta - 'enrichment', status = 'open' WHERE id = %s", (album.id,))
    write_summaries, newer = assembly.write_summaries, []

    def recomposed_while_writing(*args, **kwargs):
        if not newer:  # telegram_albums is writing the S3 summaries; the refresh DAG stores an edit and
            edit(path, 108, "Street food, edited mid-write")  # publishes the new composition meanwhile
            with db.connect(conn.info.dsn) as other:
                other.autocommit = True
                refresh(other, store, settings, path)
            newer.append(threading.Thread(target=publish_newer))
            newer[0].start()
            newer[0].join(1.0)  # (it waits for the album's lock)
        return write_summaries(*args, **kwargs)

    def publish_newer():
        with db.connect(conn.info.dsn) as other:
            other.autocommit = True
            process_album(other, store, AlbumSeen(None), provider, album.id, TIMEOUT, datetime.now(UTC))

    monkeypatch.setattr(assembly, "write_summaries", recomposed_while_writing)
    process_album(conn, store, AlbumSeen(None), provider, album.id, TIMEOUT, datetime.now(UTC))
    newer[0].join()
    current = load_album(conn, album.id)
    assert current.meta["enrichment"]["content_hash"] == current.content_hash
    [key] = current.meta["enrichment"]["s3_keys"].values()
    summary = json.loads(s3_client.get_object(Bucket=bucket, Key=key)["Body"].read())
    assert summary["assembled_at"] == current.meta["enrichment"]["assembled_at"]


def test_a_summary_for_a_composition_that_changed_meanwhile_is_not_stored(conn, store, settings, published, provider):
    from include.album.steps.assembly import summarize_album

    path, _ = published
    stale = album_of(conn, STREET_FOOD)
    edit(path, 108, "Street food, edited while its summary was computed")
    refresh(conn, store, settings, path)
    before = db.fetch_one(conn, "album_summary_get", {"album_id": stale.id})
    summarize_album(conn, stale, provider.key, TIMEOUT, datetime.now(UTC))
    assert db.fetch_one(conn, "album_summary_get", {"album_id": stale.id}) == before


def test_an_edit_committed_while_posts_are_being_indexed_is_indexed_by_the_next_call(
        conn, store, settings, published, provider, qindex, monkeypatch):
    path, _ = published
    edit(path, 101, "Welcome, edited once")
    refresh(conn, store, settings, path)
    documents, edited_meanwhile = indexing.loose_post_documents, threading.Event()

    def documents_then_an_edit(*args, **kwargs):
        docs = documents(*args, **kwargs)
        if not edited_meanwhile.is_set():  # the refresh DAG stores a second edit on its own connection
            edited_meanwhile.set()
            edit(path, 101, "Welcome, edited twice", minutes_later=60)
            with db.connect(conn.info.dsn) as other:
                other.autocommit = True
                refresh(other, store, settings, path)
        return docs

    monkeypatch.setattr(indexing, "loose_post_documents", documents_then_an_edit)
    assert index_loose_posts(conn, store, provider, qindex)["posts"] == 1  # indexed "edited once"
    assert [r["message_id"] for r in db.fetch_all(conn, "posts_to_index", {"limit": 10})] == [101]
    assert index_loose_posts(conn, store, provider, qindex)["posts"] == 1
    [point] = qindex.client.retrieve(qindex.collection, [post_point_id(LAB, 101)], with_payload=True)
    assert "edited twice" in point.payload["text"]
    assert db.fetch_all(conn, "posts_to_index", {"limit": 10}) == []


def test_an_older_version_of_a_message_never_replaces_a_newer_one(conn, store, settings, published):
    path, _ = published
    older = next(m for m in ArchiveSender(path).history(LAB).messages if m.id == 101)
    edit(path, 101, "Welcome, the newer edit")
    refresh(conn, store, settings, path)  # one DAG stored the newer edit
    from include.album.steps.downloads import Fetched, fetch_media
    from include.album.steps.writes import write_fetched
    from tests.helpers import run

    fetched = Fetched()  # the other read the message before it was edited, and writes now
    run(fetch_media(conn, ArchiveTelegramClient(path), store, load_channel(conn), [older], settings, fetched))
    write_fetched(conn, LAB, fetched, hwm=None)
    assert conn.execute("SELECT text FROM posts WHERE channel_id = %s AND message_id = 101",
                        (LAB,)).fetchone()["text"] == "Welcome, the newer edit"


def test_album_writers_wait_for_each_other(conn, published):
    album = album_of(conn, STREET_FOOD)
    held, order = threading.Event(), []

    def hold():
        with db.connect(conn.info.dsn) as other:
            other.autocommit = True
            with albums_locked(other, [album.id]):
                held.set()
                threading.Event().wait(0.5)  # the other writer is asking meanwhile
                order.append("first writer done")

    holder = threading.Thread(target=hold)
    holder.start()
    held.wait(5)
    with albums_locked(conn, [album.id]) as [current]:
        order.append("second writer in")
    holder.join()
    assert current.id == album.id and order == ["first writer done", "second writer in"]


def load_channel(conn):
    from include.album.steps.channels import load_channel as load

    return load(conn, LAB)
