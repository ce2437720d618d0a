"""A channel's past by day (steps.history) on Postgres, moto S3 and the archive transport: what a
day stores, what it costs in Telegram requests, albums across midnight, budgets and waits."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from devtools.sample import HISTORY_START, build_history_archive, differences_from_expectation, register_sample
from include.album.domain.settings import Settings
from include.album.source.archive import ArchiveTelegramClient, Fault
from include.album.source.pull import PullWindow
from include.album.steps.change_check import find_changed_channels
from include.album.steps.history import HistoryPaused, import_history
from include.album.steps.ingest import ingest_channels

pytestmark = pytest.mark.integration

DAYS, PER_DAY = 6, 15


@pytest.fixture(scope="module")
def past(tmp_path_factory) -> tuple:
    path = tmp_path_factory.mktemp("history") / "archive"
    return path, build_history_archive(path, channels=2, days=DAYS, per_day=PER_DAY)


@pytest.fixture
def registered(conn, past):
    register_sample(conn, past[1])
    return past


def day(n: int) -> PullWindow:
    start = HISTORY_START + timedelta(days=n)
    return PullWindow(start, start + timedelta(days=1))


def history_requests(client) -> int:
    return sum(n for name, n in client.requests.items() if name != "GetFileRequest")


def import_days(conn, store, settings, path, channel_ids, days) -> int:
    """Each day through a fresh client, as each run's task; returns the requests, downloads aside."""
    spent = 0
    for n in days:
        client = ArchiveTelegramClient(path)
        import_history(conn, store, client, channel_ids, settings, day(n))
        spent += history_requests(client)
    return spent


def stored(conn, channel_id: int) -> list[tuple[int, datetime]]:
    return [(r["message_id"], r["posted_at"]) for r in conn.execute(
        "SELECT message_id, posted_at FROM posts WHERE channel_id = %s ORDER BY message_id", (channel_id,))]


def album_sizes(conn) -> set[int]:
    return {r["items_count"] for r in conn.execute("SELECT items_count FROM media_groups")}


def test_a_day_stores_every_message_of_that_day_and_keeps_what_the_page_brought_beyond_it(
        conn, store, settings, registered):
    path, expected = registered
    busy = expected["channels"][1]["id"]
    client = ArchiveTelegramClient(path)
    [result] = import_history(conn, store, client, [busy], settings, day(2))
    assert {m for m, _ in stored(conn, busy)} == days_posts(expected, busy, 2)  # exactly the day
    kept = conn.execute("SELECT count(*) AS n FROM history_staged WHERE channel_id = %s", (busy,)).fetchone()["n"]
    assert kept == len(days_posts(expected, busy, 3, 4, 5))  # the rest of the page, kept for its own days
    # one page to the channel's newest message (fewer than 100 came), and its newest id to be sure of it
    assert client.requests == {"GetHistoryRequest": 1, "GetPeerDialogsRequest": 1, "GetFileRequest": 3}
    assert result.requests == 2
    assert conn.execute("SELECT hwm FROM channels WHERE id = %s", (busy,)).fetchone()["hwm"] == 0  # marks untouched
    assert album_sizes(conn) == {3}  # no album in part

    # Every day that page reached costs nothing now.
    again = ArchiveTelegramClient(path)
    import_history(conn, store, again, [busy], settings, day(3))
    assert history_requests(again) == 0
    assert {m for m, _ in stored(conn, busy)} == days_posts(expected, busy, 2, 3)


def days_posts(expected: dict, channel_id: int, *days: int) -> set[int]:
    return {p["message_id"] for p in expected["posts"] if p["channel_id"] == channel_id and any(
        day(n).start <= datetime.fromisoformat(p["posted_at"]) < day(n).end for n in days)}


@pytest.mark.parametrize("order", ["forward", "backward"])
def test_a_span_costs_about_one_request_per_100_messages_in_either_order(conn, store, settings, registered, order):
    path, expected = registered
    busy, quiet = expected["channels"][1]["id"], expected["channels"][2]["id"]
    days = range(DAYS) if order == "forward" else range(DAYS - 1, -1, -1)
    spent = import_days(conn, store, settings, path, [busy], days)
    ideal = math.ceil(DAYS * PER_DAY / 100)
    assert spent <= 2 * ideal + 1, spent
    # 3 messages in the whole span: a page and the channel's newest id; run backwards, the first
    # (the last) day's page cannot know it is the only one needed, so one page more
    assert import_days(conn, store, settings, path, [quiet], days) <= (2 if order == "forward" else 3)
    assert differences_from_expectation(conn, {**expected, "albums": [a for a in expected["albums"] if a[
        "channel_id"] == busy], "posts": [p for p in expected["posts"] if p["channel_id"] in (busy, quiet)],
        "skips": []}) == []


@pytest.fixture
def small_pages(monkeypatch):
    """Pages of 7 messages: every few messages a page ends, often inside an album."""
    from include.album.source import pull
    from include.album.steps import history

    monkeypatch.setattr(pull, "HISTORY_PAGE", 7)
    monkeypatch.setattr(history, "HISTORY_PAGE", 7)


@pytest.mark.parametrize("order", ["forward", "backward", "middle out"])
def test_no_album_is_stored_in_part_and_every_message_once_whatever_the_order_of_the_days(
        conn, store, settings, registered, small_pages, order):
    path, expected = registered
    midnight = expected["channels"][0]["id"]  # its albums run from 23:59:58 into the next day
    days = {"forward": range(DAYS), "backward": range(DAYS - 1, -1, -1), "middle out": [3, 2, 4, 1, 5, 0]}[order]
    for n in days:
        import_days(conn, store, settings, path, [midnight], [n])
        assert album_sizes(conn) <= {3}  # never in part, after any day
    posts = [p["message_id"] for p in expected["posts"] if p["channel_id"] == midnight]
    assert [m for m, _ in stored(conn, midnight)] == posts
    assert conn.execute("SELECT count(*) AS n FROM media_groups").fetchone()["n"] == DAYS


def test_a_task_hands_over_when_its_budget_is_spent_and_the_next_try_goes_on(
        conn, store, bucket, registered, small_pages):
    path, expected = registered
    busy = expected["channels"][1]["id"]
    settings = Settings(s3_bucket=bucket, history_requests_per_task=3)
    tries = 0
    while True:
        tries += 1
        try:
            import_history(conn, store, ArchiveTelegramClient(path), [busy], settings,
                           PullWindow(day(0).start, day(DAYS - 1).end))
            break
        except HistoryPaused as paused:
            assert paused.resume_at > datetime.now(UTC)
    assert tries > 3  # 90 messages in pages of 7, three pages a try
    posts = [p["message_id"] for p in expected["posts"] if p["channel_id"] == busy]
    assert [m for m, _ in stored(conn, busy)] == posts  # each once
    assert album_sizes(conn) == {3}


def test_a_wait_during_history_pauses_history_alone(conn, store, settings, registered):
    path, expected = registered
    busy = expected["channels"][1]["id"]
    waiting = ArchiveTelegramClient(path, faults=[Fault("FLOOD_WAIT_600", rpcs=frozenset({"history"}))])
    given = datetime.now(UTC)
    with pytest.raises(HistoryPaused) as paused:
        import_history(conn, store, waiting, [busy], settings, day(1))
    assert abs((paused.value.resume_at - given).total_seconds() - 600) < 5
    channel = conn.execute("SELECT flood_wait_until FROM channels WHERE id = %s", (busy,)).fetchone()
    assert channel["flood_wait_until"] is None  # the live pulls of the channel go on
    assert conn.execute("SELECT count(*) AS n FROM telegram_waits").fetchone()["n"] == 0  # nor the session's


def test_live_pulls_cover_their_time_and_history_over_it_costs_nothing_and_stores_each_message_once(
        conn, store, settings, registered):
    path, expected = registered
    busy = expected["channels"][1]["id"]
    late = HISTORY_START + timedelta(days=3, hours=6)
    # The channel went live on day 3: its first pull took its newest messages, later pulls the rest.
    live = find_changed_channels(conn, ArchiveTelegramClient(path, as_of=late), settings)
    assert busy in live
    ingest_channels(conn, store, ArchiveTelegramClient(path, as_of=late), [busy],
                    Settings(s3_bucket=settings.s3_bucket, max_messages_per_pull=20))
    find_changed_channels(conn, ArchiveTelegramClient(path), settings)
    ingest_channels(conn, store, ArchiveTelegramClient(path), [busy], settings)
    mark = conn.execute("SELECT hwm FROM channels WHERE id = %s", (busy,)).fetchone()["hwm"]

    inside = ArchiveTelegramClient(path)
    import_history(conn, store, inside, [busy], settings, day(4))  # live pulls hold all of it
    assert history_requests(inside) == 0
    import_days(conn, store, settings, path, [busy], range(DAYS))  # the rest of the past
    assert conn.execute("SELECT hwm FROM channels WHERE id = %s", (busy,)).fetchone()["hwm"] == mark
    posts = [p for p in expected["posts"] if p["channel_id"] == busy]
    assert [m for m, _ in stored(conn, busy)] == [p["message_id"] for p in posts]
    assert album_sizes(conn) == {3}


def test_messages_kept_long_ago_are_fetched_again_by_id_for_fresh_file_references(
        conn, store, settings, registered, monkeypatch):
    from include.album.steps import history

    path, expected = registered
    busy = expected["channels"][1]["id"]
    import_history(conn, store, ArchiveTelegramClient(path), [busy], settings, day(2))
    monkeypatch.setattr(history, "KEPT_FRESH", timedelta(0))  # as if kept hours ago
    later = ArchiveTelegramClient(path)
    import_history(conn, store, later, [busy], settings, day(3))
    assert later.requests["GetMessagesRequest"] == 1 and "GetHistoryRequest" not in later.requests
    assert {m for m, _ in stored(conn, busy)} == days_posts(expected, busy, 2, 3)


def test_channels_list_shows_how_far_back_a_history_reaches_and_what_is_left_to_import(
        conn, store, settings, registered, pg, capsys):
    from include.album.admin.cli import main
    from include.album.steps.history import request_days

    path, expected = registered
    busy = expected["channels"][1]["id"]
    request_days(conn, [busy], PullWindow(day(0).start, day(DAYS - 1).end))  # a backfill of every day, begun
    import_history(conn, store, ArchiveTelegramClient(path), [busy], settings, day(2))
    capsys.readouterr()
    assert main(["--dsn", pg.dsn, "channels", "list"]) == 0
    listing = capsys.readouterr().out
    assert "stored history back to 2026-02-03 00:00; importing 2026-02-01..2026-02-07: 2 days 0 h left" in listing

    import_days(conn, store, settings, path, [busy], [0])
    assert main(["--dsn", pg.dsn, "channels", "list"]) == 0
    assert "stored history back to 2026-02-01 00:00; imported 2026-02-01..2026-02-07" in capsys.readouterr().out
