"""Telegram's own failures and configuration mistakes, through the DAG (dag.test on real
Postgres, moto S3, Redis, Qdrant local mode, FalkorDB; Telegram is the archive transport
answering with injected RPC errors). Each test checks the rows of every channel, the marks,
the states or skips with their reasons, the metric, and the next run's catch-up.
See docs/reliability.md for the table of scenarios."""

from __future__ import annotations

import json
import time
from collections import Counter
from datetime import UTC, datetime

import pytest

from devtools.archive_edits import rename_channel
from devtools.sample import LAB, MIXED, NEWS, differences_from_expectation
from include.album.steps import metrics
from tests.dag.conftest import run_dag
from tests.dag.test_faults import tries
from tests.helpers import s3_keys

pytestmark = [pytest.mark.dag, pytest.mark.integration, pytest.mark.faults]

MARKS = {LAB: 114, NEWS: 212, MIXED: 306}


class Sent:
    """What the tasks sent to StatsD, in this process (dag.test runs the tasks in it)."""

    def __init__(self):
        self.counters: Counter[str] = Counter()
        self.gauges: dict[str, float] = {}

    def incr(self, stat: str, count: int = 1) -> None:
        self.counters[stat] += count

    def gauge(self, stat: str, value: float) -> None:
        self.gauges[stat] = value

    def timing(self, stat: str, dt: float) -> None:
        pass


@pytest.fixture
def sent():
    from airflow.sdk.observability import stats

    recorder = Sent()
    metrics.send_to(recorder)
    yield recorder
    metrics.send_to(stats)


def telegram(monkeypatch, pipeline, *faults: dict) -> None:
    """The archive with Telegram answering ``faults`` (``archive.Fault``), or plainly with none."""
    monkeypatch.setenv("AIRFLOW_CONN_TELEGRAM_DEFAULT", json.dumps(
        {"conn_type": "generic", "extra": {"archive": str(pipeline.archive), "faults": list(faults)}}))


def posts_by_channel(conn) -> dict[int, int]:
    return {r["channel_id"]: r["n"] for r in conn.execute(
        "SELECT channel_id, count(*) AS n FROM posts GROUP BY channel_id")}


def marks(conn) -> dict[int, int]:
    return {r["id"]: r["hwm"] for r in conn.execute("SELECT id, hwm FROM channels")}


def channel(conn, channel_id: int) -> dict:
    return conn.execute("SELECT * FROM channels WHERE id = %s", (channel_id,)).fetchone()


def logged(caplog, text: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if text in r.getMessage()]


def test_a_channel_gone_private_is_set_aside_the_others_go_on_and_enable_brings_it_back(
        dagbag, pipeline, conn, pg, monkeypatch, sent, caplog, capsys):
    from include.album.admin.cli import main

    telegram(monkeypatch, pipeline, {"error": "CHANNEL_PRIVATE", "channel": NEWS, "times": "always"})
    state, _ = run_dag(dagbag)
    assert state == "success"
    assert posts_by_channel(conn) == {LAB: 13, MIXED: 6} and marks(conn) == {LAB: 114, NEWS: 0, MIXED: 306}
    news = channel(conn, NEWS)
    assert (news["state"], news["state_reason"]) == ("unavailable", "CHANNEL_PRIVATE") and news["state_since"]
    assert sent.counters["telegram_albums.channel_unavailable.channel_private"] == 1
    assert sent.gauges["telegram_albums.channels_unavailable"] == 1
    assert logged(caplog, "Telegram refused it while asking for its newest message (CHANNEL_PRIVATE")
    assert {r["status"] for r in conn.execute("SELECT status FROM media_groups")} == {"assembled"}

    # The next run leaves it alone (its re-check is not due): not asked, nothing recorded again.
    checked = news["checked_at"]
    assert run_dag(dagbag)[0] == "success"
    assert channel(conn, NEWS)["checked_at"] == checked
    assert sent.counters["telegram_albums.channel_unavailable.channel_private"] == 1

    # Access restored; a person re-enables it; the next run catches up from its mark.
    telegram(monkeypatch, pipeline)
    assert main(["--dsn", pg.dsn, "channels", "enable", str(NEWS)]) == 0
    assert "enabled" in capsys.readouterr().out
    assert run_dag(dagbag)[0] == "success"
    assert differences_from_expectation(conn, pipeline.expected) == []
    assert marks(conn) == MARKS and channel(conn, NEWS)["state"] == "active"
    assert sent.gauges["telegram_albums.channels_unavailable"] == 0


def test_a_refused_session_fails_at_once_without_retries_and_a_new_session_catches_up(
        dagbag, pipeline, conn, monkeypatch, sent, caplog):
    telegram(monkeypatch, pipeline, {"error": "AUTH_KEY_DUPLICATED", "times": "always"})
    state, dag_run = run_dag(dagbag)
    assert state == "failed"
    assert tries(dag_run)[("changed_channels", -1)] == 1  # failed on its first try, no retry spent
    assert sent.counters["telegram_albums.session_unusable.auth_key_duplicated"] == 1
    [error] = logged(caplog, "configuration error, not retried")
    assert "telegram_default" in error and "python -m include.album login" in error
    assert posts_by_channel(conn) == {} and marks(conn) == {LAB: 0, NEWS: 0, MIXED: 0}
    assert conn.execute("SELECT count(*) AS n FROM channels WHERE last_error IS NOT NULL OR state <> 'active'"
                        ).fetchone()["n"] == 0  # the channels are not blamed

    telegram(monkeypatch, pipeline)  # the new session
    assert run_dag(dagbag)[0] == "success"
    assert differences_from_expectation(conn, pipeline.expected) == [] and marks(conn) == MARKS


def test_a_photo_whose_file_reference_keeps_expiring_is_fetched_again_its_album_waits_and_a_later_run_stores_it(
        dagbag, pipeline, conn, monkeypatch, sent):
    # Telegram refuses Album Lab's first three downloads: message 102's photo, fetched again by
    # id twice, is refused all three times; every other file is served.
    telegram(monkeypatch, pipeline, {"error": "FILE_REFERENCE_EXPIRED", "channel": LAB, "rpc": "download",
                                     "times": 3})
    assert run_dag(dagbag)[0] == "success"
    assert marks(conn) == MARKS and posts_by_channel(conn) == {LAB: 13, NEWS: 12, MIXED: 6}
    [retry] = conn.execute("SELECT * FROM media_retries").fetchall()
    assert (retry["channel_id"], retry["message_id"], retry["part"], retry["tries"]) == (LAB, 102, "media", 1)
    assert retry["last_error"].startswith("FILE_REFERENCE_EXPIRED")
    post = conn.execute("SELECT media_sha256, media_skip_reason FROM posts WHERE channel_id = %s AND message_id = 102",
                        (LAB,)).fetchone()
    assert (post["media_sha256"], post["media_skip_reason"]) == (None, None)  # not a skip: fetched again
    albums = {r["message_ids"][0]: r["status"] for r in conn.execute(
        "SELECT g.status, array_agg(i.message_id ORDER BY i.position) AS message_ids FROM media_groups g "
        "JOIN media_group_items i ON i.group_id = g.id GROUP BY g.id")}
    assert albums.pop(102) == "open"  # waits for its photo (partial after assembly_timeout_minutes)
    assert set(albums.values()) == {"assembled"}
    assert sent.counters["telegram_albums.file_reference_refetches.skipped"] == 1
    assert sent.counters["telegram_albums.media_retries.error"] == 1
    assert sent.gauges["telegram_albums.media_to_refetch"] == 1

    # The retry is due after the first backoff (5 minutes): the next run fetches it and the album completes.
    conn.execute("UPDATE media_retries SET retry_after = now()")
    telegram(monkeypatch, pipeline)
    assert run_dag(dagbag)[0] == "success"
    assert differences_from_expectation(conn, pipeline.expected) == []
    assert {r["status"] for r in conn.execute("SELECT status FROM media_groups")} == {"assembled"}
    assert conn.execute("SELECT count(*) AS n FROM media_retries").fetchone()["n"] == 0
    assert sent.counters["telegram_albums.media_retries.stored"] == 1
    assert sent.gauges["telegram_albums.media_to_refetch"] == 0


def published(conn, stores, album_id: int) -> dict[str, bool]:
    """Where an album is published: its S3 summaries, its Qdrant point, its graph node."""
    from include.album.stores.qdrant import album_point_id

    s3 = any(key.startswith("album/") and key.endswith(f"/{album_id}_vision_summary_v1.json")
             for key in s3_keys(stores.s3, stores.bucket))
    qdrant = bool(stores.points([album_point_id(album_id)]))
    graph = stores.graph.graph.query("MATCH (a:Album {album_id: $id}) RETURN count(a)", {"id": album_id}
                                     ).result_set[0][0] > 0
    return {"s3": s3, "qdrant": qdrant, "graph": graph}


def test_a_premium_wait_mid_album_defers_its_downloads_and_the_album_is_published_once_complete(
        dagbag, pipeline, conn, stores, monkeypatch, sent):
    from tests.dag.test_telegram_albums_dag import asset_events

    # Album Lab's second download (message 103, item 2 of the harbour album) meets
    # FLOOD_PREMIUM_WAIT_5, above the 1-s sleep threshold: Telegram paces the account's downloads.
    pipeline.with_settings(monkeypatch, flood_sleep_threshold_seconds=1)
    telegram(monkeypatch, pipeline, {"error": "FLOOD_PREMIUM_WAIT_5", "channel": LAB, "rpc": "download", "after": 1})
    state, first = run_dag(dagbag)
    assert state == "success" and marks(conn) == MARKS  # every post stored, the marks moved on
    harbour = conn.execute("SELECT id, status, caption_text, items_count FROM media_groups WHERE channel_id = %s "
                           "AND grouped_id = %s", (LAB, 7000000000000000001)).fetchone()
    assert (harbour["status"], harbour["caption_text"], harbour["items_count"]) == (
        "open", "Evening at the harbour", 3)  # all its members known; its photos 103 and 104 still to come
    waiting = {r["message_id"]: r for r in conn.execute("SELECT * FROM media_retries WHERE channel_id = %s", (LAB,))}
    assert {103, 104} <= set(waiting) and {r["tries"] for r in waiting.values()} == {0}  # a wait is no try
    assert waiting[103]["last_error"].startswith("FLOOD_PREMIUM_WAIT_5")
    [wait] = conn.execute("SELECT * FROM telegram_waits").fetchall()
    assert wait["request"] == "upload.GetFileRequest"
    assert published(conn, stores, harbour["id"]) == {"s3": False, "qdrant": False, "graph": False}
    assert conn.execute("SELECT count(*) AS n FROM ingest_skips WHERE reason NOT IN "
                        "('service_message', 'unsupported_media')").fetchone()["n"] == 0
    assert sent.counters["telegram_albums.media_retries.wait"] >= 10

    time.sleep(max(0.0, (wait["until"] - datetime.now(UTC)).total_seconds()) + 0.5)
    telegram(monkeypatch, pipeline)
    state, second = run_dag(dagbag)
    assert state == "success"
    assert differences_from_expectation(conn, pipeline.expected) == []
    assert conn.execute("SELECT count(*) AS n FROM media_retries").fetchone()["n"] == 0
    assert {r["status"] for r in conn.execute("SELECT status FROM media_groups")} == {"assembled"}
    assert published(conn, stores, harbour["id"]) == {"s3": True, "qdrant": True, "graph": True}
    events = [e for run in (first, second) for e in asset_events("album.assembled", run.run_id)]
    assert sum(harbour["id"] in e["album_ids"] for e in events) == 1  # published exactly once


def test_a_wait_on_the_change_check_is_obeyed_by_the_next_run_without_a_request(
        dagbag, pipeline, conn, monkeypatch, sent):
    pipeline.with_settings(monkeypatch, flood_sleep_threshold_seconds=1)
    telegram(monkeypatch, pipeline, {"error": "FLOOD_WAIT_300", "rpc": "dialogs"})
    assert run_dag(dagbag)[0] == "success"
    assert posts_by_channel(conn) == {} and sent.counters["telegram_albums.telegram_requests.get_peer_dialogs"] == 1
    [wait] = conn.execute("SELECT * FROM telegram_waits").fetchall()
    assert (wait["request"], wait["error"]) == ("messages.GetPeerDialogsRequest", "FLOOD_WAIT_300")

    asked = sum(n for name, n in sent.counters.items() if ".telegram_requests." in name)
    assert run_dag(dagbag)[0] == "success"  # within the wait: not asked, not one request
    assert sum(n for name, n in sent.counters.items() if ".telegram_requests." in name) == asked

    conn.execute("UPDATE telegram_waits SET until = now() - interval '1 second'")  # five minutes later
    telegram(monkeypatch, pipeline)
    assert run_dag(dagbag)[0] == "success"
    assert differences_from_expectation(conn, pipeline.expected) == [] and marks(conn) == MARKS


def test_a_renamed_channel_is_followed_by_the_table_the_graph_and_the_labels(
        dagbag, pipeline, conn, monkeypatch, sent, falkordb_port):
    from falkordb import FalkorDB

    from include.album.steps.assembly import load_album

    assert run_dag(dagbag)[0] == "success"
    rename_channel(pipeline.archive, NEWS, username="news_archive", title="Новости (архив)")
    assert run_dag(dagbag)[0] == "success"
    news = channel(conn, NEWS)
    assert (news["username"], news["title"], news["renamed_at"]) == ("news_archive", "Новости (архив)", None)
    assert marks(conn) == MARKS and differences_from_expectation(conn, pipeline.expected) == []  # rows untouched
    assert channel(conn, LAB)["username"] == "album_lab" and channel(conn, MIXED)["username"] == "mixed_media"
    assert sent.counters["telegram_albums.channel_renames"] == 1
    graph = FalkorDB(host="127.0.0.1", port=falkordb_port).select_graph(pipeline.graph_name)
    nodes = graph.query("MATCH (c:Channel {channel_id: $id}) RETURN c.username, c.title", {"id": NEWS}).result_set
    assert nodes == [["news_archive", "Новости (архив)"]]
    album_id = conn.execute("SELECT id FROM media_groups WHERE channel_id = %s LIMIT 1", (NEWS,)).fetchone()["id"]
    assert load_album(conn, album_id).label == f"@news_archive album {album_id}"
    graph.delete()


def test_telegram_5xx_after_retries_leaves_the_channel_for_the_next_run(dagbag, pipeline, conn, monkeypatch, sent):
    telegram(monkeypatch, pipeline, {"error": "RPC_CALL_FAIL", "channel": LAB, "rpc": ["history", "messages"],
                                     "times": "always"})
    assert run_dag(dagbag)[0] == "success"
    assert posts_by_channel(conn) == {NEWS: 12, MIXED: 6} and marks(conn) == {LAB: 0, NEWS: 212, MIXED: 306}
    lab = channel(conn, LAB)
    assert lab["failures"] == 1 and lab["last_error"].startswith("RpcCallFailError") and lab["state"] == "active"
    assert sent.counters["telegram_albums.server_errors.rpc_call_fail"] == 1
    assert sent.gauges["telegram_albums.channels_failing"] == 1

    telegram(monkeypatch, pipeline)
    assert run_dag(dagbag)[0] == "success"
    assert differences_from_expectation(conn, pipeline.expected) == [] and marks(conn) == MARKS
    assert channel(conn, LAB)["last_error"] is None


# -- configuration mistakes ----------------------------------------------------------------


@pytest.mark.parametrize(("settings", "says"), [
    ('{"max_messages_per_pull": "abc"}', 'setting max_messages_per_pull must be an integer, not "abc" (a string)'),
    ('{"max_messages_per_pull": 12.7}', "must be an integer, not 12.7 (a number with a fraction)"),
    ('{"channels_mapped_per_run": true}', "setting channels_mapped_per_run must be an integer, not true"),
    ('{"s3_bucket": ["a"]}', 'setting s3_bucket must be a string, not ["a"] (a list)'),
    ('{"max_messages_per_pull": 5,}', "Variable telegram_albums_settings is not valid JSON"),
], ids=["wrong type", "float", "bool", "list", "malformed JSON"])
def test_a_settings_mistake_fails_the_first_task_once_naming_the_field_value_and_type(
        dagbag, pipeline, conn, monkeypatch, caplog, settings, says):
    monkeypatch.setenv("AIRFLOW_VAR_TELEGRAM_ALBUMS_SETTINGS", settings)
    state, dag_run = run_dag(dagbag)
    assert state == "failed"
    assert tries(dag_run)[("migrate", -1)] == 1
    [error] = logged(caplog, "configuration error, not retried")
    assert says in error
    assert posts_by_channel(conn) == {}


def test_a_missing_connection_fails_once_naming_it_and_where_it_is_set(dagbag, pipeline, conn, monkeypatch, caplog):
    monkeypatch.delenv("AIRFLOW_CONN_ALBUMS_S3")
    state, dag_run = run_dag(dagbag)
    assert state == "failed"
    assert tries(dag_run)[("migrate", -1)] == 1
    [error] = logged(caplog, "configuration error, not retried")
    assert "connection albums_s3 is not defined" in error and "AIRFLOW_CONN_ALBUMS_S3" in error
    assert 'README "Configuration"' in error
