"""Telegram's own failures at the step level (Postgres, moto S3, the archive transport with
injected RPC errors): each policy of ``source.failures``, and the next pull's catch-up.
The same policies through the DAG, with metrics, are in tests/dag/test_telegram_failures.py."""


from datetime import UTC, datetime, timedelta

import pytest

from devtools.archive_edits import rename_channel
from devtools.sample import LAB, MIXED, NEWS, SAMPLE_START, differences_from_expectation, register_sample
from include.album.domain.settings import Settings
from include.album.source.archive import ArchiveTelegramClient, Fault
from include.album.source.failures import SessionUnusable
from include.album.steps.change_check import find_changed_channels
from include.album.steps.channels import channels_to_pull
from include.album.steps.ingest import ingest_channels
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
    assert (news["state"], news["state_reason"], news["hwm"]) == ("unavailable", "CHANNEL_PRIVATE", 212)
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


def retries(conn) -> dict[tuple[int, str], dict]:
    return {(r["message_id"], r["part"]): r for r in conn.execute("SELECT * FROM media_retries")}


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
    assert retries(conn) == {}
    assert conn.execute("SELECT count(*) AS n FROM posts WHERE channel_id = %s AND media_kind IS NOT NULL "
                        "AND media_sha256 IS NULL", (LAB,)).fetchone()["n"] == 0


def test_media_that_cannot_be_fetched_is_fetched_again_by_a_later_pull(conn, store, settings, registered):
    path, expected = registered
    expiring = client(path, {"error": "FILE_REFERENCE_EXPIRED", "channel": LAB, "rpc": "download",
                             "times": "always"})
    now = datetime.now(UTC)
    [result] = ingest_channels(conn, store, expiring, [LAB], settings, now=now)
    photos = {102, 103, 104, 105, 106, 108, 109, 112, 113, 114}
    assert {r.message_id for r in result.retries} == photos | {107}  # the video's file too
    assert [s for s in result.skips if s.ref != "message:110"] == []  # not a skip: fetched again
    assert result.hwm == 114  # the posts are stored, so the mark moves on; the retries are what is fetched again
    rows = retries(conn)
    assert {(m, p) for m, p in rows} == {(m, "media") for m in photos | {107}}
    assert {(r["tries"], r["last_error"].split(":")[0]) for r in rows.values()} == {(1, "FILE_REFERENCE_EXPIRED")}
    assert {r["retry_after"] for r in rows.values()} == {now + timedelta(minutes=5)}  # the first backoff
    album = conn.execute("SELECT id, status FROM media_groups WHERE channel_id = %s ORDER BY id", (LAB,)).fetchone()
    assert album["status"] == "open"
    lab = next(c for c in channels_to_pull(conn, settings, now) if c.id == LAB)
    assert not lab.media_pending and lab.hwm == 114  # not due before the backoff
    later = now + timedelta(minutes=6)
    assert next(c for c in channels_to_pull(conn, settings, later) if c.id == LAB).media_pending

    # Nothing new on the channel, but its media is due: the next window pulls it and fetches them.
    assert find_changed_channels(conn, ArchiveTelegramClient(path), settings, now=later) == [LAB, NEWS, MIXED]
    again_client = ArchiveTelegramClient(path)
    [again] = ingest_channels(conn, store, again_client, [LAB], settings, now=later)
    assert again_client.requests["GetMessagesRequest"] == 1 and "GetHistoryRequest" not in again_client.requests
    assert again.retries == [] and retries(conn) == {}
    assert sorted(again.album_ids) == [r["id"] for r in conn.execute(
        "SELECT id FROM media_groups WHERE channel_id = %s ORDER BY id", (LAB,))]  # recomposed with their media
    ingest_channels(conn, store, ArchiveTelegramClient(path), [NEWS, MIXED], settings)
    assert differences_from_expectation(conn, expected) == []
    assert not next(c for c in channels_to_pull(conn, settings, later) if c.id == LAB).media_pending


def test_a_premium_wait_on_a_download_defers_the_sessions_downloads_and_a_later_run_stores_the_photo(
        conn, store, settings, registered):
    path, expected = registered
    # Telegram paces the account's downloads: the second file of Album Lab meets FLOOD_PREMIUM_WAIT_90,
    # mid-album (102 is stored, 103 is not).
    now = datetime.now(UTC)
    waiting = client(path, {"error": "FLOOD_PREMIUM_WAIT_90", "channel": LAB, "rpc": "download", "after": 1})
    results = {r.channel_id: r for r in ingest_channels(conn, store, waiting, [LAB, NEWS], settings, now=now)}
    assert waiting.requests["GetFileRequest"] == 2  # the rest of the unit's downloads waited without asking
    assert results[LAB].hwm == 114 and results[NEWS].hwm == 212  # every post stored, the marks moved on
    rows = retries(conn)
    assert {m for m, _ in rows if m < 200} == {103, 104, 105, 106, 107, 108, 109, 112, 113, 114}
    news_media = {p["message_id"] for p in expected["posts"] if p["channel_id"] == NEWS and p["media_stored"]}
    assert {m for m, _ in rows if m > 200} == news_media  # NEWS's media waited as well
    assert {(r["tries"], r["last_error"].split(":")[0]) for r in rows.values()} == {(0, "FLOOD_PREMIUM_WAIT_90")}
    given = {r["retry_after"] for r in rows.values()}
    assert len(given) == 1 and abs((given.pop() - now).total_seconds() - 90) < 5  # from when it was given
    assert conn.execute("SELECT count(*) AS n FROM ingest_skips WHERE reason NOT IN "
                        "('service_message', 'unsupported_media')").fetchone()["n"] == 0
    [wait] = conn.execute("SELECT * FROM telegram_waits").fetchall()
    assert (wait["request"], wait["error"]) == ("upload.GetFileRequest", "FLOOD_PREMIUM_WAIT_90")
    harbour = conn.execute("SELECT status FROM media_groups WHERE channel_id = %s AND grouped_id = %s",
                           (LAB, 7000000000000000001)).fetchone()
    assert harbour["status"] == "open"  # its items 103 and 104 are still to come

    # A run within the wait (80 s left: above Telethon's 60-s sleep threshold) downloads nothing:
    # the stored wait is obeyed without asking.
    conn.execute("UPDATE channels SET hwm = 113 WHERE id = %s", (LAB,))
    within = client(path)
    ingest_channels(conn, store, within, [LAB], settings, now=now + timedelta(seconds=10))
    assert "GetFileRequest" not in within.requests

    # After the wait, the next run fetches the media again by id and stores every photo: no skip left.
    after = now + timedelta(seconds=95)
    assert find_changed_channels(conn, ArchiveTelegramClient(path), settings, now=after) == [LAB, NEWS, MIXED]
    ingest_channels(conn, store, ArchiveTelegramClient(path), [LAB, NEWS, MIXED], settings, now=after)
    assert retries(conn) == {}
    assert differences_from_expectation(conn, expected) == []


def test_a_5xx_on_a_preview_is_fetched_again_and_a_later_success_stores_it(
        conn, store, settings, registered, no_retry_sleep):
    path, expected = registered
    now = datetime.now(UTC)
    failing = client(path, {"error": "RPC_CALL_FAIL", "channel": LAB, "rpc": "preview", "times": "always"})
    ingest_channels(conn, store, failing, [LAB], settings, now=now)
    video = conn.execute("SELECT media_sha256, thumb_sha256, media_skip_reason FROM posts WHERE message_id = 107"
                         ).fetchone()
    assert video["media_sha256"] is not None and video["thumb_sha256"] is None and video["media_skip_reason"] is None
    [(key, row)] = retries(conn).items()
    assert key == (107, "preview") and row["tries"] == 1 and row["last_error"].startswith("RPC_CALL_FAIL")

    later = now + timedelta(minutes=6)
    again = ArchiveTelegramClient(path)
    ingest_channels(conn, store, again, [LAB], settings, now=later)
    assert again.requests["GetFileRequest"] == 1  # the preview alone: the video itself is stored
    assert conn.execute("SELECT thumb_sha256 FROM posts WHERE message_id = 107").fetchone()["thumb_sha256"]
    assert retries(conn) == {}


def test_a_file_gone_for_good_is_a_terminal_skip_with_its_reason(conn, store, settings, registered):
    path, _ = registered
    gone = client(path, {"error": "FILE_ID_INVALID", "channel": LAB, "rpc": "download", "after": 1})
    ingest_channels(conn, store, gone, [LAB], settings)
    [skip] = conn.execute("SELECT * FROM ingest_skips WHERE reason = 'media_gone'").fetchall()
    assert skip["ref"] == "message:103" and "FILE_ID_INVALID" in skip["detail"]
    post = conn.execute("SELECT media_skip_reason FROM posts WHERE message_id = 103").fetchone()
    assert post["media_skip_reason"] == "media_gone" and retries(conn) == {}


def test_an_error_that_keeps_failing_is_given_up_after_its_tries_over_a_day(conn, store, bucket, registered,
                                                                           no_retry_sleep):
    path, _ = registered
    settings = Settings(s3_bucket=bucket, media_retry_tries=3, media_retry_hours=24)
    start = datetime.now(UTC)
    failing = {"error": "SOMETHING_UNHEARD_OF", "channel": LAB, "rpc": "download", "times": "always"}
    ingest_channels(conn, store, client(path, failing), [LAB], settings, now=start)
    for hours, tries in ((6, 2), (12, 3)):  # three tries, but not yet over a day: still fetched again
        ingest_channels(conn, store, client(path, failing), [LAB], settings, now=start + timedelta(hours=hours))
        assert {r["tries"] for r in retries(conn).values()} == {tries}
    ingest_channels(conn, store, client(path, failing), [LAB], settings, now=start + timedelta(hours=25))
    assert retries(conn) == {}
    skips = conn.execute("SELECT ref, detail FROM ingest_skips WHERE reason = 'download_failed'").fetchall()
    assert len(skips) == 11 and "in 4 tries over 25 hours" in skips[0]["detail"]
    assert "SOMETHING_UNHEARD_OF" in skips[0]["detail"]


def test_a_wait_on_the_change_check_is_obeyed_by_the_next_runs_until_it_ends(conn, store, settings, registered):
    path, _ = registered
    now = datetime.now(UTC)
    asking = client(path, {"error": "FLOOD_WAIT_600", "rpc": "dialogs"})
    assert find_changed_channels(conn, asking, settings, now=now) == []
    [wait] = conn.execute("SELECT * FROM telegram_waits").fetchall()
    assert (wait["request"], wait["error"]) == ("messages.GetPeerDialogsRequest", "FLOOD_WAIT_600")

    for minutes in (5, 9):  # the next runs do not ask: no request at all
        quiet = ArchiveTelegramClient(path)
        assert find_changed_channels(conn, quiet, settings, now=now + timedelta(minutes=minutes)) == []
        assert quiet.requests == {}

    after = ArchiveTelegramClient(path)
    assert find_changed_channels(conn, after, settings, now=now + timedelta(minutes=11)) == [LAB, NEWS, MIXED]
    assert after.requests["GetPeerDialogsRequest"] == 1


def test_the_later_channels_of_a_unit_keep_the_wait_telegram_gave(conn, store, settings, registered):
    path, _ = registered
    # The unit started an hour ago (a long unit); LAB and NEWS meet FLOOD_WAIT_600 now, so the wait
    # is the session's and MIXED is deferred without asking, until the end of the wait Telegram gave.
    started = datetime.now(UTC) - timedelta(hours=1)
    unit = client(path, *[{"error": "FLOOD_WAIT_600", "channel": c, "rpc": ["history", "messages"]}
                          for c in (LAB, NEWS)])
    given = datetime.now(UTC)
    results = ingest_channels(conn, store, unit, CHANNELS, settings, now=started)
    assert [r.messages for r in results] == [0, 0, 0]
    assert unit.requests["GetHistoryRequest"] + unit.requests["GetMessagesRequest"] == 2  # MIXED not asked
    for row in conn.execute("SELECT id, flood_wait_until FROM channels"):
        assert abs((row["flood_wait_until"] - given).total_seconds() - 600) < 5, row["id"]
    stored = {r["request"] for r in conn.execute("SELECT request FROM telegram_waits")}
    assert stored & {"messages.GetHistoryRequest", "channels.GetMessagesRequest"}  # kept for the next runs


def test_an_album_a_wait_cut_is_left_out_whole_and_stored_complete_later(conn, store, settings, registered):
    from include.album.source.pull import PullWindow
    from include.album.steps.channels import ChannelDeferred

    path, _ = registered
    # The window 10:05-10:10 ends inside the Compass album (112 at 10:09:58, 113 and 114 after):
    # confirming its members beyond the window (the second channels.getMessages, after the one for
    # the members before the window) meets a wait, so the album is not stored at all.
    window = PullWindow(SAMPLE_START + timedelta(minutes=5), SAMPLE_START + timedelta(minutes=10))
    cut = client(path, {"error": "FLOOD_WAIT_600", "channel": LAB, "rpc": "messages", "after": 1})
    with pytest.raises(ChannelDeferred, match="FLOOD_WAIT_600"):
        ingest_channels(conn, store, cut, [LAB], settings, window=window)
    stored = [r["message_id"] for r in conn.execute("SELECT message_id FROM posts ORDER BY message_id")]
    assert stored == [106, 107, 108, 109, 111]  # no post of the Compass album
    assert conn.execute("SELECT count(*) AS n FROM media_groups WHERE grouped_id = %s",
                        (7000000000000000003,)).fetchone()["n"] == 0

    deferred = conn.execute("SELECT flood_wait_until FROM channels WHERE id = %s", (LAB,)).fetchone()
    retry_at = deferred["flood_wait_until"] + timedelta(seconds=1)  # the task's retry, after the wait
    ingest_channels(conn, store, ArchiveTelegramClient(path), [LAB], settings, window=window, now=retry_at)
    compass = conn.execute("SELECT items_count, caption_text FROM media_groups WHERE grouped_id = %s",
                           (7000000000000000003,)).fetchone()
    assert (compass["items_count"], compass["caption_text"]) == (3, "Compass series")


def test_telegram_5xx_after_retries_leaves_the_channel_for_the_next_run_and_two_in_a_row_the_unit(
        conn, store, settings, registered, no_retry_sleep):
    path, expected = registered
    one_down = client(path, {"error": "RPC_CALL_FAIL", "channel": LAB, "times": "always"})
    results = {r.channel_id: r for r in ingest_channels(conn, store, one_down, CHANNELS, settings)}
    assert "RpcCallFailError" in results[LAB].error and results[NEWS].messages == 12
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
