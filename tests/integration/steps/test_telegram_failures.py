"""Telegram's own failures at the step level (Postgres, moto S3, the archive transport with
injected RPC errors): each policy of ``source.failures``, and the next pull's catch-up.
The same policies through the DAG, with metrics, are in tests/dag/test_telegram_failures.py."""


import pytest

from devtools.sample import LAB, MIXED, NEWS, differences_from_expectation, register_sample
from include.album.source.archive import ArchiveTelegramClient, Fault, rename_channel
from include.album.source.failures import SessionUnusable
from include.album.steps.ingest import channels_to_pull, find_changed_channels, ingest_channels
from include.album.stores import db

pytestmark = pytest.mark.integration

CHANNELS = [LAB, NEWS, MIXED]


@pytest.fixture
def registered(conn, archive_copy):
    register_sample(conn, archive_copy[1])
    return archive_copy


@pytest.fixture
def no_retry_sleep(monkeypatch):
    """Telethon sleeps 2 s between retries of a 5xx answer; the tests need not wait for them."""
    import asyncio

    async def no_sleep(seconds, *args, **kwargs):
        return None

    monkeypatch.setattr(asyncio, "sleep", no_sleep)


def client(path, *faults: dict) -> ArchiveTelegramClient:
    return ArchiveTelegramClient(path, faults=[Fault.from_mapping(f) for f in faults])


def channel_row(conn, channel_id: int) -> dict:
    return conn.execute("SELECT * FROM channels WHERE id = %s", (channel_id,)).fetchone()


def post_counts(conn) -> dict[int, int]:
    return {r["channel_id"]: r["n"] for r in conn.execute(
        "SELECT channel_id, count(*) AS n FROM posts GROUP BY channel_id")}


def test_a_channel_telegram_refuses_is_set_aside_and_comes_back_when_rechecked(conn, store, settings, registered):
    path, expected = registered
    results = {r.channel_id: r for r in ingest_channels(conn, store, client(
        path, {"error": "CHANNEL_PRIVATE", "channel": NEWS, "times": "always"}), CHANNELS, settings)}
    assert results[NEWS].unavailable == "CHANNEL_PRIVATE" and results[NEWS].error is None
    assert results[LAB].messages == 13 and results[MIXED].messages == 6  # nothing else affected
    news = channel_row(conn, NEWS)
    assert (news["state"], news["state_reason"], news["hwm"]) == ("unavailable", "CHANNEL_PRIVATE", 0)
    assert news["state_since"] is not None and news["last_error"] is None
    assert NEWS not in {c.id for c in channels_to_pull(conn, settings)}  # passed over until re-checked

    # The re-check is due: Telegram answers for it again, so it is pulled from its mark.
    conn.execute("UPDATE channels SET checked_at = now() - interval '25 hours' WHERE id = %s", (NEWS,))
    assert find_changed_channels(conn, ArchiveTelegramClient(path), settings) == [NEWS]
    assert channel_row(conn, NEWS)["state"] == "active"
    ingest_channels(conn, store, ArchiveTelegramClient(path), [NEWS], settings)
    assert differences_from_expectation(conn, expected) == []


def test_a_recheck_still_refused_keeps_it_aside_without_touching_its_rows(conn, store, settings, registered):
    path, _ = registered
    ingest_channels(conn, store, ArchiveTelegramClient(path), CHANNELS, settings)
    posts_before = post_counts(conn)
    # Then the channel goes private: the next window's question about it is refused.
    conn.execute("UPDATE channels SET in_dialogs = false WHERE id = %s", (NEWS,))
    asking = client(path, {"error": "CHANNEL_PRIVATE", "channel": NEWS, "times": "always"})
    assert find_changed_channels(conn, asking, settings) == []
    news = channel_row(conn, NEWS)
    assert (news["state"], news["state_reason"], news["hwm"]) == ("unavailable", "CHANNEL_PRIVATE", 210)
    first_since = news["state_since"]
    conn.execute("UPDATE channels SET checked_at = now() - interval '25 hours' WHERE id = %s", (NEWS,))
    find_changed_channels(conn, client(path, {"error": "CHANNEL_PRIVATE", "channel": NEWS, "times": "always"}),
                          settings)
    news = channel_row(conn, NEWS)
    assert news["state"] == "unavailable" and news["state_since"] == first_since
    assert news["checked_at"] > first_since
    assert post_counts(conn) == posts_before


def test_a_refused_session_stops_the_unit_keeps_what_was_stored_and_the_next_session_catches_up(
        conn, store, settings, registered):
    path, expected = registered
    # Revoked while the unit runs: the first channel is stored, the session dies on the second.
    dying = client(path, {"error": "SESSION_REVOKED", "channel": NEWS, "times": "always"})
    with pytest.raises(SessionUnusable, match="python -m include.album login"):
        ingest_channels(conn, store, dying, CHANNELS, settings)
    assert post_counts(conn) == {LAB: 13}
    assert {r["id"]: r["hwm"] for r in conn.execute("SELECT id, hwm FROM channels")} == {LAB: 114, NEWS: 0, MIXED: 0}
    assert conn.execute("SELECT count(*) AS n FROM channels WHERE last_error IS NOT NULL "
                        "OR state <> 'active'").fetchone()["n"] == 0  # not blamed on the channels

    refused = client(path, {"error": "AUTH_KEY_UNREGISTERED", "times": "always"})
    with pytest.raises(SessionUnusable, match="AuthKeyUnregisteredError"):
        find_changed_channels(conn, refused, settings)

    changed = find_changed_channels(conn, ArchiveTelegramClient(path), settings)  # a new session
    assert changed == [NEWS, MIXED]
    ingest_channels(conn, store, ArchiveTelegramClient(path), changed, settings)
    assert differences_from_expectation(conn, expected) == []


def test_an_expired_file_reference_is_fetched_again_by_id(conn, store, settings, registered):
    path, expected = registered
    clean = ArchiveTelegramClient(path)
    ingest_channels(conn, store, clean, [LAB], settings)
    conn.execute("DELETE FROM media_group_items; DELETE FROM media_groups; DELETE FROM posts; "
                 "DELETE FROM media_objects; UPDATE channels SET hwm = 0")
    pulling = client(path, {"error": "FILE_REFERENCE_EXPIRED", "channel": LAB, "rpc": "download", "times": 2})
    ingest_channels(conn, store, pulling, [LAB], settings)
    # the message fetched again once per expiry (its photo was refused twice, then served)
    assert pulling.requests["GetMessagesRequest"] == clean.requests["GetMessagesRequest"] + 2
    assert conn.execute("SELECT count(*) AS n FROM ingest_skips WHERE reason = 'file_reference_expired'"
                        ).fetchone()["n"] == 0
    assert conn.execute("SELECT count(*) AS n FROM posts WHERE channel_id = %s AND media_kind IS NOT NULL "
                        "AND media_sha256 IS NULL", (LAB,)).fetchone()["n"] == 0


def test_a_photo_that_cannot_be_fetched_is_recorded_and_fetched_by_a_later_pull(conn, store, settings, registered):
    path, expected = registered
    expiring = client(path, {"error": "FILE_REFERENCE_EXPIRED", "channel": LAB, "rpc": "download",
                             "times": "always"})
    [result] = ingest_channels(conn, store, expiring, [LAB], settings)
    skipped = {s.ref for s in result.skips if s.reason == "file_reference_expired"}
    photos = {f"message:{m}" for m in (102, 103, 104, 105, 106, 108, 109, 112, 113, 114)}
    assert skipped == photos | {"message:107"}  # the video's file too (its preview is another file)
    assert result.hwm == 114  # recorded, so the mark moves on; the skips are what is retried
    rows = {r["ref"]: r for r in conn.execute("SELECT * FROM ingest_skips WHERE reason = 'file_reference_expired'")}
    assert set(rows) == skipped and "a later run fetches it again" in rows["message:102"]["detail"]
    album = conn.execute("SELECT id, status FROM media_groups WHERE channel_id = %s ORDER BY id", (LAB,)).fetchone()
    assert album["status"] == "open"
    lab = next(c for c in channels_to_pull(conn, settings) if c.id == LAB)
    assert lab.media_pending and lab.hwm == 114

    # Nothing new on the channel, but its media is due: the next window pulls it and fetches them.
    assert find_changed_channels(conn, ArchiveTelegramClient(path), settings) == [LAB, NEWS, MIXED]
    later = ArchiveTelegramClient(path)
    [again] = ingest_channels(conn, store, later, [LAB], settings)
    assert later.requests["GetMessagesRequest"] == 1 and "GetHistoryRequest" not in later.requests
    assert [s for s in again.skips if s.reason == "file_reference_expired"] == []
    assert conn.execute("SELECT count(*) AS n FROM ingest_skips WHERE reason = 'file_reference_expired'"
                        ).fetchone()["n"] == 0
    assert sorted(again.album_ids) == [r["id"] for r in conn.execute(
        "SELECT id FROM media_groups WHERE channel_id = %s ORDER BY id", (LAB,))]  # recomposed with their media
    ingest_channels(conn, store, ArchiveTelegramClient(path), [NEWS, MIXED], settings)
    assert differences_from_expectation(conn, expected) == []
    assert not next(c for c in channels_to_pull(conn, settings) if c.id == LAB).media_pending


def test_telegram_5xx_after_retries_leaves_the_channel_for_the_next_run_and_two_in_a_row_the_unit(
        conn, store, settings, registered, no_retry_sleep):
    path, expected = registered
    one_down = client(path, {"error": "RPC_CALL_FAIL", "channel": LAB, "times": "always"})
    results = {r.channel_id: r for r in ingest_channels(conn, store, one_down, CHANNELS, settings)}
    assert "RpcCallFailError" in results[LAB].error and results[NEWS].messages == 10
    lab = channel_row(conn, LAB)
    assert (lab["hwm"], lab["failures"], lab["state"]) == (0, 1, "active") and "RpcCallFailError" in lab["last_error"]

    conn.execute("UPDATE channels SET hwm = 0")
    conn.execute("DELETE FROM posts")
    all_down = client(path, {"error": "TIMEOUT", "times": "always", "rpc": ["history", "messages"]})
    results = ingest_channels(conn, store, all_down, CHANNELS, settings)
    assert [bool(r.error) for r in results] == [True, True, True]
    assert "not asked: Telegram failed the 2 channels before it" in results[2].error
    assert all_down.requests["GetHistoryRequest"] == 2 * 6  # the third channel cost nothing
    assert post_counts(conn) == {}

    ingest_channels(conn, store, ArchiveTelegramClient(path), CHANNELS, settings)
    assert differences_from_expectation(conn, expected) == []
    assert channel_row(conn, LAB)["last_error"] is None


def test_a_rename_is_followed_and_a_username_can_move_between_channels(conn, store, settings, registered):
    path, _ = registered
    rename_channel(path, NEWS, username="news_archive", title="News (archive)")
    rename_channel(path, LAB, username="novosti_test", title="Album Lab")  # takes NEWS's old username
    find_changed_channels(conn, ArchiveTelegramClient(path), settings)
    names = {r["id"]: (r["username"], r["title"], r["renamed_at"] is not None) for r in conn.execute(
        "SELECT id, username, title, renamed_at FROM channels")}
    assert names == {LAB: ("novosti_test", "Album Lab", True), NEWS: ("news_archive", "News (archive)", True),
                     MIXED: ("mixed_media", "Mixed Media", False)}
    assert db.fetch_all(conn, "channels_renamed", {"limit": 10})[0]["id"] == LAB
