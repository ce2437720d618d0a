"""Ingestion against the running Postgres and moto's S3 server (real Telethon code via the archive)."""

from datetime import timedelta

import pytest

from devtools.sample import LAB, MIXED, NEWS, SAMPLE_START, differences_from_expectation, register_sample
from include.album.source.archive import ArchiveTelegramClient
from include.album.source.pull import PullWindow
from include.album.steps.channels import ChannelDeferred
from include.album.steps.ingest import ingest_channel
from include.album.stores import db
from tests.helpers import fail_storing, flood_wait, ingest_all, s3_keys, snapshot

pytestmark = pytest.mark.integration

COMPASS = 7000000000000000003  # album 112-114 of Album Lab, posted across 10:09:58 -> 10:10:05


@pytest.fixture
def registered(conn, sample_archive):
    register_sample(conn, sample_archive[1])
    return sample_archive


def album_row(conn, channel_id: int, grouped_id: int) -> dict:
    return conn.execute(
        "SELECT g.id, g.items_count, g.caption_text, array_agg(i.message_id ORDER BY i.position) AS ids "
        "FROM media_groups g JOIN media_group_items i ON i.group_id = g.id "
        "WHERE g.channel_id = %s AND g.grouped_id = %s GROUP BY g.id", (channel_id, grouped_id)).fetchone()


def test_sample_archive_is_stored_exactly_as_expected(conn, store, settings, registered, s3_client, bucket):
    path, expected = registered
    results = ingest_all(conn, store, path, expected, settings)
    assert differences_from_expectation(conn, expected) == []
    media_keys = s3_keys(s3_client, bucket)
    stored = conn.execute("SELECT s3_key FROM media_objects ORDER BY s3_key").fetchall()
    assert media_keys == [r["s3_key"] for r in stored]
    assert all(k.startswith("media/") and k.split("/")[1] == k.split("/")[2][:2] for k in media_keys)
    # every video item also has its preview stored for vision
    assert conn.execute("SELECT count(*) AS n FROM posts WHERE media_kind IN ('video', 'gif') "
                        "AND thumb_sha256 IS NULL").fetchone()["n"] == 0
    assert sorted(a for r in results.values() for a in r.album_ids) == [
        r["id"] for r in conn.execute("SELECT id FROM media_groups ORDER BY id")]
    marks = {r["id"]: r["hwm"] for r in conn.execute("SELECT id, hwm FROM channels")}
    assert marks == {LAB: 114, NEWS: 212, MIXED: 306}
    skips = {(r["channel_id"], r["ref"], r["reason"]) for r in conn.execute("SELECT * FROM ingest_skips")}
    assert skips == {(s["channel_id"], s["ref"], s["reason"]) for s in expected["skips"]}


def test_rerun_changes_nothing(conn, store, settings, registered, s3_client, bucket):
    path, expected = registered
    ingest_all(conn, store, path, expected, settings)
    before, keys_before, puts_before = snapshot(conn), s3_keys(s3_client, bucket), store.puts
    updated_before = conn.execute("SELECT max(updated_at) AS t FROM posts").fetchone()["t"]
    # rerun from scratch marks, as a cleared task or a replayed window would
    conn.execute("UPDATE channels SET hwm = 0")
    results = ingest_all(conn, store, path, expected, settings)
    conn.execute("UPDATE channels SET hwm = m.hwm FROM (VALUES (%s::bigint, 114), (%s, 212), (%s, 306)) "
                 "AS m(id, hwm) WHERE channels.id = m.id", (LAB, NEWS, MIXED))
    assert snapshot(conn) == before
    assert s3_keys(s3_client, bucket) == keys_before
    assert store.puts == puts_before  # HEAD found every object: no second upload
    assert all(r.album_ids == [] for r in results.values())  # no album changed
    assert conn.execute("SELECT max(updated_at) AS t FROM posts").fetchone()["t"] == updated_before


def test_pull_ending_inside_an_album_then_a_second_pull_gives_one_complete_album(conn, store, settings, registered):
    path, expected = registered
    mid_album = SAMPLE_START + timedelta(minutes=10, seconds=3)  # 112 and 113 posted, 114 not yet
    first = ingest_channel(conn, store, ArchiveTelegramClient(path, as_of=mid_album), LAB, settings)
    partial = album_row(conn, LAB, COMPASS)
    assert partial["ids"] == [112, 113] and partial["id"] in first.album_ids

    second = ingest_channel(conn, store, ArchiveTelegramClient(path), LAB, settings)
    complete = album_row(conn, LAB, COMPASS)
    assert complete["ids"] == [112, 113, 114]
    assert complete["id"] == partial["id"] and complete["id"] in second.album_ids
    assert conn.execute("SELECT count(*) AS n FROM media_groups WHERE grouped_id = %s AND channel_id = %s",
                        (COMPASS, LAB)).fetchone()["n"] == 1


def test_pull_capped_inside_an_album_confirms_its_members(conn, store, registered, bucket):
    from include.album.domain.settings import Settings

    path, _ = registered
    capped = Settings(s3_bucket=bucket, max_messages_per_pull=2)
    conn.execute("UPDATE channels SET hwm = 111 WHERE id = %s", (LAB,))
    result = ingest_channel(conn, store, ArchiveTelegramClient(path), LAB, capped)
    assert album_row(conn, LAB, COMPASS)["ids"] == [112, 113, 114]  # 114 confirmed beyond the cap
    assert result.hwm == 114


def test_backfill_windows_store_their_messages_and_complete_albums_at_the_edges(conn, store, settings, registered):
    path, expected = registered
    client = ArchiveTelegramClient(path)
    window = PullWindow(SAMPLE_START + timedelta(minutes=5), SAMPLE_START + timedelta(minutes=10))
    ingest_channel(conn, store, client, LAB, settings, window=window)
    ids = [r["message_id"] for r in conn.execute("SELECT message_id FROM posts ORDER BY message_id")]
    assert ids == [106, 107, 108, 109, 111, 112, 113, 114]  # 113/114 confirmed beyond the window's end
    assert album_row(conn, LAB, COMPASS)["ids"] == [112, 113, 114]
    assert conn.execute("SELECT hwm FROM channels WHERE id = %s", (LAB,)).fetchone()["hwm"] == 0

    # the next window starts inside the same album: its earlier item is confirmed, nothing duplicated
    later = PullWindow(SAMPLE_START + timedelta(minutes=10), SAMPLE_START + timedelta(minutes=15))
    result = ingest_channel(conn, store, ArchiveTelegramClient(path), LAB, settings, window=later)
    assert result.album_ids == []
    assert album_row(conn, LAB, COMPASS)["ids"] == [112, 113, 114]


def test_flood_wait_defers_one_channel_and_the_next_run_catches_up(conn, store, settings, registered):
    path, expected = registered
    results = ingest_all(conn, store, path, expected, settings, faults=[flood_wait(NEWS, 3600)])
    assert results[NEWS].flood_wait_seconds == 3600 and results[NEWS].messages == 0
    deferred = conn.execute("SELECT flood_wait_until, hwm FROM channels WHERE id = %s", (NEWS,)).fetchone()
    assert deferred["hwm"] == 0 and deferred["flood_wait_until"] is not None
    assert results[LAB].messages == 13 and results[MIXED].messages == 6  # the others proceeded

    # still inside the wait: the channel is skipped without asking Telegram
    client = ArchiveTelegramClient(path)
    assert ingest_channel(conn, store, client, NEWS, settings).deferred_until == deferred["flood_wait_until"]
    assert client.requests == {}  # not even a connection

    # after the wait: everything is ingested, nothing skipped
    later = deferred["flood_wait_until"] + timedelta(seconds=1)
    ingest_channel(conn, store, ArchiveTelegramClient(path), NEWS, settings, now=later)
    assert differences_from_expectation(conn, expected) == []
    assert conn.execute("SELECT flood_wait_until FROM channels WHERE id = %s", (NEWS,)).fetchone()[
        "flood_wait_until"] is None


def test_flood_wait_during_a_backfill_window_fails_the_task_for_a_retry(conn, store, settings, registered):
    path, _ = registered
    window = PullWindow(SAMPLE_START, SAMPLE_START + timedelta(minutes=5))
    with pytest.raises(ChannelDeferred, match="a wait of 600s, FLOOD_WAIT_600,"):
        ingest_channel(conn, store, ArchiveTelegramClient(path, faults=[flood_wait(LAB, 600)]), LAB, settings,
                       window=window)


def test_bad_input_is_recorded_with_reasons_and_everything_else_is_stored(conn, store, bucket, archive_copy):
    from include.album.domain.settings import Settings

    path, expected = archive_copy
    register_sample(conn, expected)
    messages = path / "channels" / str(LAB) / "messages.jsonl"
    messages.write_text(messages.read_text() + "{broken json\n")
    client = ArchiveTelegramClient(path)
    photo_103 = client.archive.history(LAB).messages[-3]
    assert photo_103.id == 103
    (path / "media" / str(photo_103.media.photo.id)).unlink()
    small_cap = Settings(s3_bucket=bucket, media_size_cap_bytes=40_000)  # the 48 KB video is over it

    ingest_channel(conn, store, ArchiveTelegramClient(path), LAB, small_cap)

    skips = {r["reason"]: r["detail"] for r in conn.execute("SELECT * FROM ingest_skips")}
    assert f"channels/{LAB}/messages.jsonl line 15" in skips["corrupt_archive_line"]
    assert f"channel {LAB} message 103" in skips["media_gone"]  # missing bytes: LOCATION_INVALID
    assert f"channel {LAB} message 107" in skips["media_too_large"] and "cap" in skips["media_too_large"]
    posts = {r["message_id"]: r for r in conn.execute("SELECT * FROM posts WHERE channel_id = %s", (LAB,))}
    assert len(posts) == 13  # every message stored, the damaged ones without their media
    assert posts[103]["media_sha256"] is None and posts[103]["media_skip_reason"] == "media_gone"
    assert posts[107]["media_sha256"] is None and posts[107]["media_skip_reason"] == "media_too_large"
    assert all(posts[m]["media_sha256"] for m in (102, 104, 105, 106, 108, 109, 112, 113, 114))
    mixed = album_row(conn, LAB, 7000000000000000002)
    assert mixed["ids"] == [106, 107, 108, 109]  # the album keeps its item without media


def test_migrations_are_idempotent_and_edits_to_applied_ones_are_refused(conn, monkeypatch, tmp_path):
    assert db.apply_migrations(conn) == []
    assert [r["version"] for r in conn.execute("SELECT version FROM schema_migrations")] == [
        p.stem for p in db.migration_files()]
    edited = tmp_path / "migrations"
    edited.mkdir()
    for path in db.migration_files():
        (edited / path.name).write_text(path.read_text() + "\n-- edited\n")
    monkeypatch.setattr(db, "MIGRATIONS_DIR", edited)
    with pytest.raises(RuntimeError, match="changed after it was applied"):
        db.apply_migrations(conn)


# -- many channels, a unit over one connection -------------------------------------------


@pytest.fixture
def steady(conn, tmp_path):
    """30 channels, 12 of which post in the window after STEADY_MARK, registered."""
    from devtools.sample import build_steady_archive

    path = tmp_path / "steady"
    expected = build_steady_archive(path, 30, 12)
    register_sample(conn, expected)
    return path, expected


def pull_window_of(conn, store, settings, path, as_of) -> tuple[list[int], dict, list]:
    """What a scheduled run does: ask which channels changed, then pull them as one unit."""
    from include.album.steps.change_check import find_changed_channels
    from include.album.steps.ingest import ingest_channels

    asking = ArchiveTelegramClient(path, as_of=as_of)
    changed = find_changed_channels(conn, asking, settings)
    pulling = ArchiveTelegramClient(path, as_of=as_of)
    results = ingest_channels(conn, store, pulling, changed, settings) if changed else []
    return changed, {"asking": dict(asking.requests), "pulling": dict(pulling.requests)}, results


def test_a_window_asks_telegram_only_about_what_changed_one_request_per_changed_channel(
        conn, store, settings, steady):
    from devtools.sample import STEADY_MARK, STEADY_WINDOW

    path, expected = steady
    first, _, _ = pull_window_of(conn, store, settings, path, STEADY_MARK)
    assert len(first) == 30  # new channels: everything is above a mark of 0
    assert {r["hwm"] for r in conn.execute("SELECT hwm FROM channels")} == {2}

    changed, requests, results = pull_window_of(conn, store, settings, path, STEADY_MARK + STEADY_WINDOW)
    assert len(changed) == 12
    assert requests["asking"] == {"GetPeerDialogsRequest": 1}
    media = sum(1 for p in expected["posts"] if p["media_stored"] and p["message_id"] > 2)
    assert requests["pulling"] == {"GetMessagesRequest": 12, "GetFileRequest": media}
    assert differences_from_expectation(conn, expected) == []
    tops = {r["id"]: (r["hwm"], r["top_message"]) for r in conn.execute("SELECT id, hwm, top_message FROM channels")}
    assert all(hwm == top for hwm, top in tops.values())

    # A window in which nothing changed: one request to ask, none to pull, no connection for it.
    changed, requests, _ = pull_window_of(conn, store, settings, path, STEADY_MARK + STEADY_WINDOW)
    assert changed == [] and requests == {"asking": {"GetPeerDialogsRequest": 1},
                                          "pulling": {}}


def test_a_channel_that_fails_is_recorded_the_others_are_stored_and_the_next_run_pulls_it(
        conn, store, settings, steady, monkeypatch):
    from devtools.sample import STEADY_MARK, STEADY_WINDOW
    from include.album.steps import ingest
    from include.album.steps.change_check import find_changed_channels

    path, expected = steady
    pull_window_of(conn, store, settings, path, STEADY_MARK)
    changed = find_changed_channels(conn, ArchiveTelegramClient(path, as_of=STEADY_MARK + STEADY_WINDOW),
                                           settings)
    broken = changed[len(changed) // 2]
    repair = fail_storing(monkeypatch, broken, "cannot store message 3")
    results = ingest.ingest_channels(conn, store, ArchiveTelegramClient(path, as_of=STEADY_MARK + STEADY_WINDOW),
                                     changed, settings)
    assert [r.channel_id for r in results if r.error] == [broken]
    row = conn.execute("SELECT hwm, last_error, failures FROM channels WHERE id = %s", (broken,)).fetchone()
    assert row["hwm"] == 2 and row["failures"] == 1 and "cannot store message 3" in row["last_error"]
    stored = {r["channel_id"] for r in conn.execute("SELECT DISTINCT channel_id FROM posts WHERE message_id > 2")}
    assert stored == set(changed) - {broken}

    repair()  # the cause is gone; the next run
    again, _, _ = pull_window_of(conn, store, settings, path, STEADY_MARK + STEADY_WINDOW)
    assert again == [broken]
    assert differences_from_expectation(conn, expected) == []
    row = conn.execute("SELECT last_error, failures FROM channels WHERE id = %s", (broken,)).fetchone()
    assert row["last_error"] is None and row["failures"] == 0


def test_a_floodwait_defers_its_channel_and_a_second_one_in_a_row_defers_the_rest_of_the_unit_unasked(
        conn, store, settings, steady):
    from devtools.sample import STEADY_MARK, STEADY_WINDOW
    from include.album.steps.change_check import find_changed_channels
    from include.album.steps.ingest import ingest_channels

    path, expected = steady
    pull_window_of(conn, store, settings, path, STEADY_MARK)
    window_end = STEADY_MARK + STEADY_WINDOW
    changed = find_changed_channels(conn, ArchiveTelegramClient(path, as_of=window_end), settings)
    first = changed[3]

    # One FloodWait: that channel is deferred, the next ones still ask and are stored.
    client = ArchiveTelegramClient(path, as_of=window_end, faults=[flood_wait(first, 600)])
    results = {r.channel_id: r for r in ingest_channels(conn, store, client, changed[:6], settings)}
    assert results[first].flood_wait_seconds == 600
    assert [c for c, r in results.items() if r.deferred_until] == [first]
    assert client.requests["GetMessagesRequest"] == 6

    # Two in a row: the wait is the session's; the channels after them are deferred without a request.
    client = ArchiveTelegramClient(path, as_of=window_end,
                                   faults=[flood_wait(changed[6], 600), flood_wait(changed[7], 600)])
    results = {r.channel_id: r for r in ingest_channels(conn, store, client, changed[6:], settings)}
    assert all(r.deferred_until for r in results.values())
    assert client.requests["GetMessagesRequest"] == 2
    waits = {r["id"] for r in conn.execute("SELECT id FROM channels WHERE flood_wait_until > now()")}
    assert waits == {first, *changed[6:]}


def test_a_failure_is_cleared_once_telegram_says_the_channel_has_nothing_new(conn, store, settings, steady):
    from devtools.sample import STEADY_MARK
    from include.album.steps.change_check import find_changed_channels

    path, _ = steady
    pull_window_of(conn, store, settings, path, STEADY_MARK)
    quiet = conn.execute("SELECT id FROM channels ORDER BY id LIMIT 1").fetchone()["id"]
    conn.execute("UPDATE channels SET last_error = 'RpcCallFailError: 500', last_error_at = now(), failures = 2 "
                 "WHERE id = %s", (quiet,))
    assert find_changed_channels(conn, ArchiveTelegramClient(path, as_of=STEADY_MARK), settings) == []
    row = conn.execute("SELECT last_error, failures FROM channels WHERE id = %s", (quiet,)).fetchone()
    assert row["last_error"] is None and row["failures"] == 0
