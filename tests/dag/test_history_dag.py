"""telegram_albums_history through dag.test (real Postgres, moto S3, Redis, Qdrant local mode,
FalkorDB; Telegram is the archive transport): a day per run, what a run stores and costs, the
conf's channels, a rerun, a wait during history."""

from __future__ import annotations

import math
from collections import Counter
from datetime import datetime, timedelta

import pytest

from devtools.sample import HISTORY_START, build_history_archive
from tests.dag.conftest import run_dag, use_archive
from tests.dag.test_faults import tries
from tests.helpers import store_state

pytestmark = [pytest.mark.dag, pytest.mark.integration]

DAG_ID = "telegram_albums_history"
DAYS, PER_DAY = 4, 15


@pytest.fixture(scope="module")
def past_archive(tmp_path_factory) -> tuple:
    path = tmp_path_factory.mktemp("history-dag") / "archive"
    return path, build_history_archive(path, channels=2, days=DAYS, per_day=PER_DAY)


@pytest.fixture
def past(monkeypatch, airflow_db, pg, conn, s3_endpoint, bucket, past_archive, tmp_path, falkordb_port):
    from tests.dag.conftest import forget_album_seen, memoise_local_vision

    path, expected = past_archive
    setup = use_archive(monkeypatch, archive=path, expected=expected, pg=pg, conn=conn, s3_endpoint=s3_endpoint,
                        bucket=bucket, tmp_path=tmp_path, falkordb_port=falkordb_port)
    memoise_local_vision(monkeypatch)
    yield setup
    forget_album_seen()


@pytest.fixture
def requests_sent(monkeypatch):
    """The Telegram requests the tasks reported (the metric), by kind."""
    from airflow.sdk.observability import stats

    from include.album.steps import metrics

    sent: Counter[str] = Counter()

    class Recorder:
        def incr(self, stat: str, count: int = 1) -> None:
            if ".telegram_requests." in stat:
                sent[stat.rsplit(".", 1)[1]] += count

        def gauge(self, stat: str, value: float) -> None:
            pass

        def timing(self, stat: str, dt: float) -> None:
            pass

    metrics.send_to(Recorder())
    yield sent
    metrics.send_to(stats)


def run_day(dagbag, n: int, **conf):
    """The run of day ``n`` (its data interval is the day before the logical date)."""
    state, dag_run = run_dag(dagbag, DAG_ID, logical_date=HISTORY_START + timedelta(days=n + 1),
                             run_conf=conf or None)
    assert state == "success"
    return dag_run


def posts(conn) -> dict[int, set[int]]:
    found: dict[int, set[int]] = {}
    for r in conn.execute("SELECT channel_id, message_id FROM posts"):
        found.setdefault(r["channel_id"], set()).add(r["message_id"])
    return found


def expected_posts(expected: dict, *days: int, channels: set[int] | None = None) -> dict[int, set[int]]:
    """The posts dated in ``days``, and the rest of their albums (one crosses midnight)."""
    def in_days(post: dict) -> bool:
        when = datetime.fromisoformat(post["posted_at"])
        return any(HISTORY_START + timedelta(days=n) <= when < HISTORY_START + timedelta(days=n + 1) for n in days)

    albums = {(p["channel_id"], p["grouped_id"]) for p in expected["posts"] if in_days(p) and p["grouped_id"]}
    found: dict[int, set[int]] = {}
    for p in expected["posts"]:
        if (in_days(p) or (p["channel_id"], p["grouped_id"]) in albums) and (channels is None or p[
                "channel_id"] in channels):
            found.setdefault(p["channel_id"], set()).add(p["message_id"])
    return found


def test_a_days_run_stores_exactly_that_day_with_its_albums_whole_and_a_rerun_changes_nothing(
        dagbag, past, conn, s3_client, bucket):
    run_day(dagbag, 2)
    assert posts(conn) == expected_posts(past.expected, 2)
    assert {r["hwm"] for r in conn.execute("SELECT hwm FROM channels")} == {0}  # the live marks never move
    albums = conn.execute("SELECT status, meta -> 'index' IS NOT NULL AS indexed FROM media_groups").fetchall()
    assert albums and all(a["status"] == "assembled" and a["indexed"] for a in albums)  # the same album tasks
    before = store_state(conn, s3_client, bucket)
    run_day(dagbag, 2)
    assert store_state(conn, s3_client, bucket) == before


def test_the_confs_channels_only(dagbag, past, conn):
    chosen = past.expected["channels"][1]
    run_day(dagbag, 1, channels=[f"@{chosen['username']}"])
    assert posts(conn) == expected_posts(past.expected, 1, channels={chosen["id"]})


def test_days_in_order_cost_about_one_request_per_100_messages_and_a_quiet_channel_two(
        dagbag, past, conn, requests_sent):
    for n in range(DAYS):
        run_day(dagbag, n)
    assert posts(conn) == expected_posts(past.expected, *range(DAYS))
    busy_channels, quiet_channels = 2, 1
    ideal = busy_channels * math.ceil(DAYS * PER_DAY / 100) + quiet_channels
    reads = sum(n for kind, n in requests_sent.items() if kind != "get_file")
    assert reads <= 2 * ideal + busy_channels + quiet_channels, requests_sent
    assert "get_state" not in requests_sent
    assert {r["items_count"] for r in conn.execute("SELECT items_count FROM media_groups")} == {3}


def test_a_wait_during_history_reschedules_history_alone_and_the_next_try_completes(
        dagbag, past, conn, monkeypatch):
    from include.album.orchestration import tasks
    from include.album.source.archive import ArchiveTelegramClient, Fault

    clients = []
    real = tasks.telegram_client

    def telegram_client(settings, **kwargs):  # Telegram asks the first history client for a 2-s wait
        client = real(settings, **kwargs)
        if not clients:
            client = ArchiveTelegramClient(past.archive, faults=[Fault("FLOOD_WAIT_2", rpcs=frozenset({"history"}))],
                                           flood_sleep_threshold=0)
        clients.append(client)
        return client

    monkeypatch.setattr(tasks, "telegram_client", telegram_client)
    dag_run = run_day(dagbag, 1)
    assert len(clients) >= 2  # rescheduled, then done
    assert posts(conn) == expected_posts(past.expected, 1)
    assert conn.execute("SELECT count(*) AS n FROM channels WHERE flood_wait_until IS NOT NULL").fetchone()["n"] == 0
    assert conn.execute("SELECT count(*) AS n FROM telegram_waits").fetchone()["n"] == 0  # live pulls unaffected
    assert tries(dag_run)[("history", 0)] == 1  # a reschedule, not a failed try
