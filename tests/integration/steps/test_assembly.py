"""Per-album vision → summary → enrichment against Postgres, moto S3 and Redis."""

import json
from datetime import UTC, datetime, timedelta

import pytest
import redis

from devtools.sample import LAB, MIXED, SAMPLE_START, register_sample
from include.album.providers.vision import LocalVision
from include.album.source.archive import ArchiveTelegramClient
from include.album.steps.albums import process_album
from include.album.steps.assembly import AlbumSeen
from include.album.steps.ingest import ingest_channel
from include.album.stores import db
from tests.helpers import MemoVision, ingest_all, s3_keys

pytestmark = pytest.mark.integration

TIMEOUT = timedelta(minutes=30)


@pytest.fixture
def redis_client():
    client = redis.Redis(host="127.0.0.1", port=6379, db=11)
    yield client
    for key in client.scan_iter("album_seen:*"):
        client.delete(key)


@pytest.fixture(scope="module")
def provider():
    return MemoVision(LocalVision())


def process_all(conn, store, seen, provider, now=None) -> dict[int, str]:
    ids = [r["id"] for r in db.fetch_all(conn, "albums_needing_work")]
    return {i: process_album(conn, store, seen, provider, i, TIMEOUT, now or datetime.now(UTC)) for i in ids}


def vision_rows(conn) -> int:
    return conn.execute("SELECT count(*) AS n FROM vision_results").fetchone()["n"]


def album_id(conn, channel_id: int, grouped_id: int) -> int:
    return conn.execute("SELECT id FROM media_groups WHERE channel_id = %s AND grouped_id = %s",
                        (channel_id, grouped_id)).fetchone()["id"]


@pytest.fixture
def ingested(conn, store, settings, sample_archive):
    path, expected = sample_archive
    register_sample(conn, expected)
    ingest_all(conn, store, path, expected, settings)
    return expected


def test_every_album_is_assembled_with_one_summary_per_tenant(conn, store, s3_client, bucket, ingested,
                                                               redis_client, provider):
    outcomes = process_all(conn, store, AlbumSeen(redis_client), provider)
    assert set(outcomes.values()) == {"published"} and len(outcomes) == len(ingested["albums"])
    albums = db.fetch_all(conn, "albums_with_items")
    assert {a["status"] for a in albums} == {"assembled"}

    subscriptions = {(t, c) for t, cs in ingested["tenants"].items() for c in cs}
    expected_keys = sorted(f"album/{t}/{a['id']}_vision_summary_v1.json"
                           for a in albums for t, c in subscriptions if c == a["channel_id"])
    assert [k for k in s3_keys(s3_client, bucket) if k.startswith("album/")] == expected_keys

    for album in albums:
        enrichment = album["meta"]["enrichment"]
        assert enrichment["content_hash"] == album["content_hash"]
        for tenant, key in enrichment["s3_keys"].items():
            document = json.loads(s3_client.get_object(Bucket=bucket, Key=key)["Body"].read())
            identity = {"album_id": album["id"], "channel_id": album["channel_id"], "grouped_id": album["grouped_id"],
                        "tenant_id": tenant, "content_hash": album["content_hash"]}
            published = {k: v for k, v in enrichment.items() if k not in ("s3_keys", "provider_key")}
            assert document == {**published, **identity}  # Postgres enrichment == the S3 JSON
        assert redis_client.get(f"album_seen:{album['channel_id']}:{album['grouped_id']}").decode() == \
            album["content_hash"]


def test_mixed_album_with_video_is_assembled_through_the_thumbnail(conn, store, ingested, provider):
    process_all(conn, store, AlbumSeen(None), provider)
    meta = conn.execute("SELECT meta FROM media_groups WHERE id = %s",
                        (album_id(conn, LAB, 7000000000000000002),)).fetchone()["meta"]
    enrichment = meta["enrichment"]
    assert enrichment["items_count"] == 4 and enrichment["items_analyzed"] == 4 and not enrichment["partial"]
    assert "MARKET" in enrichment["ocr_text"]  # read from the video's preview image
    assert [i["status"] for i in enrichment["items"]] == ["analyzed"] * 4
    assert enrichment["ocr_text"].split(" | ")[0].split() == ["STREET", "FOOD"]  # position order


def test_documents_are_skipped_with_a_reason_and_the_album_still_assembles(conn, store, ingested, provider):
    process_all(conn, store, AlbumSeen(None), provider)
    docs = conn.execute("SELECT status, meta FROM media_groups WHERE album_kind = 'document'").fetchone()
    assert docs["status"] == "assembled"
    assert [i["skip_reason"] for i in docs["meta"]["enrichment"]["items"]] == ["not_an_image:application/pdf"] * 2


def test_rerun_performs_no_vision_calls_and_changes_nothing(conn, store, s3_client, bucket, ingested, provider,
                                                            redis_client):
    process_all(conn, store, AlbumSeen(redis_client), provider)
    rows, puts = vision_rows(conn), store.puts
    objects = {k: s3_client.get_object(Bucket=bucket, Key=k)["Body"].read() for k in s3_keys(s3_client, bucket)}
    groups = conn.execute("SELECT id, status, meta, updated_at FROM media_groups ORDER BY id").fetchall()

    # still listed (no search index in this test), but nothing left to do for assembly
    assert set(process_all(conn, store, AlbumSeen(redis_client), provider).values()) == {"unchanged"}
    ids = [r["id"] for r in groups]
    assert {process_album(conn, store, AlbumSeen(redis_client), provider, i, TIMEOUT, datetime.now(UTC))
            for i in ids} == {"unchanged"}  # even when asked explicitly (a cleared task)
    assert {process_album(conn, store, AlbumSeen(None), provider, i, TIMEOUT, datetime.now(UTC))
            for i in ids} == {"unchanged"}  # Redis empty: Postgres decides the same

    assert vision_rows(conn) == rows and store.puts == puts
    assert {k: s3_client.get_object(Bucket=bucket, Key=k)["Body"].read() for k in s3_keys(s3_client, bucket)} == \
        objects
    assert conn.execute("SELECT id, status, meta, updated_at FROM media_groups ORDER BY id").fetchall() == groups


def test_late_item_recomputes_the_summary_and_analyses_only_the_new_item(conn, store, settings, sample_archive,
                                                                         provider):
    path, expected = sample_archive
    register_sample(conn, expected)
    mid_album = SAMPLE_START + timedelta(minutes=10, seconds=3)
    ingest_channel(conn, store, ArchiveTelegramClient(path, as_of=mid_album), LAB, settings)
    compass = album_id(conn, LAB, 7000000000000000003)
    process_all(conn, store, AlbumSeen(None), provider)
    before = conn.execute("SELECT meta FROM media_groups WHERE id = %s", (compass,)).fetchone()["meta"]
    assert before["enrichment"]["items_count"] == 2
    rows = vision_rows(conn)

    ingest_channel(conn, store, ArchiveTelegramClient(path), LAB, settings)
    assert album_id(conn, LAB, 7000000000000000003) == compass
    outcomes = process_all(conn, store, AlbumSeen(None), provider)
    assert outcomes[compass] == "published" and set(outcomes.values()) == {"published", "unchanged"}
    assert vision_rows(conn) == rows + 1  # only the new item's image was analysed
    after = conn.execute("SELECT status, meta FROM media_groups WHERE id = %s", (compass,)).fetchone()
    assert after["status"] == "assembled"
    assert after["meta"]["enrichment"]["items_count"] == 3
    assert after["meta"]["enrichment"]["ocr_text"].split(" | ") == ["NORTH", "SOUTH", "EAST"]


def test_item_without_vision_waits_then_assembles_partial_then_completes(conn, store, s3_client, bucket,
                                                                         ingested, provider):
    target = album_id(conn, MIXED, 7000000000000000006)
    photo = conn.execute("SELECT m.s3_key, m.sha256 FROM media_group_items i JOIN media_objects m "
                         "ON m.sha256 = i.sha256 WHERE i.group_id = %s AND i.media_kind = 'photo'",
                         (target,)).fetchone()
    saved = s3_client.get_object(Bucket=bucket, Key=photo["s3_key"])["Body"].read()
    s3_client.delete_object(Bucket=bucket, Key=photo["s3_key"])  # the S3 object is unreadable for now

    now = datetime.now(UTC)
    assert process_album(conn, store, AlbumSeen(None), provider, target, TIMEOUT, now) == "waiting"
    assert conn.execute("SELECT status FROM media_groups WHERE id = %s", (target,)).fetchone()["status"] == "open"

    later = now + TIMEOUT + timedelta(minutes=1)
    assert process_album(conn, store, AlbumSeen(None), provider, target, TIMEOUT, later) == "published"
    partial = conn.execute("SELECT status, meta FROM media_groups WHERE id = %s", (target,)).fetchone()
    assert partial["status"] == "partial" and partial["meta"]["enrichment"]["partial"] is True
    assert target in [r["id"] for r in db.fetch_all(conn, "albums_needing_work")]  # completed by a later run

    s3_client.put_object(Bucket=bucket, Key=photo["s3_key"], Body=saved)
    assert process_album(conn, store, AlbumSeen(None), provider, target, TIMEOUT, later) == "published"
    done = conn.execute("SELECT status, meta FROM media_groups WHERE id = %s", (target,)).fetchone()
    assert done["status"] == "assembled" and done["meta"]["enrichment"]["items_analyzed"] == 3


def test_redis_down_is_a_warning_and_the_album_still_assembles(conn, store, ingested, provider, caplog):
    dead = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    outcomes = process_all(conn, store, AlbumSeen(dead), provider)
    assert set(outcomes.values()) == {"published"}
    assert "Redis unavailable" in caplog.text


def test_bad_images_are_terminal_skips_and_the_album_still_assembles(conn, store, s3_client, bucket, ingested,
                                                                     provider):
    import io

    from PIL import Image

    target = album_id(conn, LAB, 7000000000000000001)
    items = conn.execute("SELECT m.s3_key FROM media_group_items i JOIN media_objects m ON m.sha256 = i.sha256 "
                         "WHERE i.group_id = %s ORDER BY i.position", (target,)).fetchall()
    bomb = io.BytesIO()
    Image.new("1", (20000, 20000)).save(bomb, format="PNG")
    s3_client.put_object(Bucket=bucket, Key=items[0]["s3_key"], Body=b"\xff\xd8\xff\xe0 truncated")
    s3_client.put_object(Bucket=bucket, Key=items[1]["s3_key"], Body=b"")
    s3_client.put_object(Bucket=bucket, Key=items[2]["s3_key"], Body=bomb.getvalue())

    assert process_album(conn, store, AlbumSeen(None), provider, target, TIMEOUT, datetime.now(UTC)) == "published"
    enrichment = conn.execute("SELECT meta FROM media_groups WHERE id = %s", (target,)).fetchone()["meta"][
        "enrichment"]
    assert [i["skip_reason"] for i in enrichment["items"]] == ["corrupt_image", "empty_file", "decompression_bomb"]
    assert (enrichment["items_skipped"], enrichment["partial"]) == (3, False)
    details = [r["skip_detail"] for r in conn.execute("SELECT skip_detail FROM vision_results "
                                                     "WHERE skip_reason IS NOT NULL ORDER BY skip_reason")]
    assert all(details)
