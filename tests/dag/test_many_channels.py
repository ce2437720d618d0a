"""A 5-minute window over many channels through the DAG (dag.test, real Postgres, moto S3, Redis,
Qdrant local mode, FalkorDB): Telegram is asked only about what changed, the changed channels are
pulled in fewer task instances than channels, and a channel that fails or is told to wait costs
that channel alone, never the others' rows.

The archive replays each run's data interval (connection extra ``replay``): a first run as of
``STEADY_MARK`` sets every channel's mark, the next one sees the window's new messages.
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from datetime import UTC, datetime

import pytest

from devtools.sample import STEADY_MARK, STEADY_WINDOW, build_steady_archive, differences_from_expectation
from include.album.stores import db
from tests.dag.conftest import forget_album_seen, memoise_local_vision, run_dag, use_archive
from tests.dag.test_telegram_albums_dag import rendered_labels
from tests.helpers import fail_storing

pytestmark = [pytest.mark.dag, pytest.mark.integration]

CHANNELS, CHANGED = 25, 10
WINDOW_END = STEADY_MARK + STEADY_WINDOW


@pytest.fixture
def steady(monkeypatch, airflow_db, pg, conn, s3_endpoint, bucket, tmp_path, falkordb_port):
    path = tmp_path / "archive"
    expected = build_steady_archive(path, CHANNELS, CHANGED)
    setup = use_archive(monkeypatch, archive=path, expected=expected, pg=pg, conn=conn, s3_endpoint=s3_endpoint,
                        bucket=bucket, tmp_path=tmp_path, falkordb_port=falkordb_port)
    telegram(monkeypatch, setup)
    memoise_local_vision(monkeypatch)
    yield setup
    forget_album_seen()


def telegram(monkeypatch, setup, **faults) -> None:
    """The archive, replayed as of each run's data interval end, with ``faults`` (``archive.Fault``)."""
    monkeypatch.setenv("AIRFLOW_CONN_TELEGRAM_DEFAULT", json.dumps(
        {"conn_type": "generic", "extra": {"archive": str(setup.archive), "replay": True, **faults}}))


def requests_logged(caplog) -> Counter:
    """The Telegram requests the run's tasks reported in their logs, summed by type."""
    total = Counter()
    for record in caplog.records:
        message = record.getMessage()
        if message.startswith("Telegram requests: ") and message != "Telegram requests: none":
            total.update({kind: int(n) for kind, n in re.findall(r"(\w+) (\d+)", message)})
    return total


def changed_channel_ids(expected: dict) -> list[int]:
    return sorted({p["channel_id"] for p in expected["posts"] if p["message_id"] > 2})


def first_run(dagbag) -> None:
    state, _ = run_dag(dagbag, logical_date=STEADY_MARK)
    assert state == "success"


def test_a_window_over_many_channels_pulls_only_the_changed_ones_in_fewer_task_instances_than_channels(
        dagbag, steady, conn, caplog):
    first_run(dagbag)
    caplog.clear()
    state, window = run_dag(dagbag, logical_date=WINDOW_END)
    assert state == "success"
    assert differences_from_expectation(conn, steady.expected) == []
    assert {a["status"] for a in db.fetch_all(conn, "albums_with_items")} == {"assembled"}

    labels = rendered_labels(window, "ingest")
    assert len(labels) == 8 < CHANNELS  # channels_mapped_per_run: 10 changed channels in 8 units
    assert sorted(labels)[:2] == ["2 channels @steady_0000, @steady_0002", "2 channels @steady_0005, @steady_0007"]
    requests = requests_logged(caplog)
    # One getPeerDialogs for all 25 channels; one getMessages per changed channel; no history scan.
    assert requests["get_peer_dialogs"] == 1 and requests["get_messages"] == CHANGED
    assert requests["get_history"] == 0


def test_a_channel_whose_pull_raises_is_recorded_the_run_succeeds_for_the_others_and_the_next_run_pulls_it(
        dagbag, steady, conn, monkeypatch):
    first_run(dagbag)
    broken = changed_channel_ids(steady.expected)[1]  # shares its unit with the first changed channel
    repair = fail_storing(monkeypatch, broken, "a message this code cannot store")
    state, window = run_dag(dagbag, logical_date=WINDOW_END)
    assert state == "success"
    row = conn.execute("SELECT hwm, last_error, failures FROM channels WHERE id = %s", (broken,)).fetchone()
    assert row["hwm"] == 2 and row["failures"] == 1 and "cannot store" in row["last_error"]
    stored = {r["channel_id"] for r in conn.execute("SELECT DISTINCT channel_id FROM posts WHERE message_id > 2")}
    assert stored == set(changed_channel_ids(steady.expected)) - {broken}
    assert db.fetch_one(conn, "run_report", {"since": None})["channels_failing"] == 1

    repair()
    state, _ = run_dag(dagbag, logical_date=WINDOW_END + STEADY_WINDOW)
    assert state == "success"
    assert differences_from_expectation(conn, steady.expected) == []
    assert conn.execute("SELECT last_error FROM channels WHERE id = %s", (broken,)).fetchone()["last_error"] is None


def test_a_floodwait_on_one_channel_of_a_unit_defers_only_that_channel(dagbag, steady, conn, monkeypatch):
    first_run(dagbag)
    waiting, same_unit = changed_channel_ids(steady.expected)[:2]  # the first unit holds both
    steady.with_settings(monkeypatch, flood_sleep_threshold_seconds=1)
    # FLOOD_WAIT_3: above the 1-s threshold
    telegram(monkeypatch, steady,
             faults=[{"channel": waiting, "rpc": ["history", "messages"], "error": "FLOOD_WAIT_3"}])
    state, window = run_dag(dagbag, logical_date=WINDOW_END)
    assert state == "success"
    assert "2 channels @steady_0000, @steady_0002" in rendered_labels(window, "ingest")
    deferred = {r["id"]: r["flood_wait_until"] for r in conn.execute(
        "SELECT id, flood_wait_until FROM channels WHERE flood_wait_until IS NOT NULL")}
    assert list(deferred) == [waiting]
    stored = {r["channel_id"] for r in conn.execute("SELECT DISTINCT channel_id FROM posts WHERE message_id > 2")}
    assert stored == set(changed_channel_ids(steady.expected)) - {waiting} and same_unit in stored

    time.sleep(max(0.0, (deferred[waiting] - datetime.now(UTC)).total_seconds()) + 1)
    telegram(monkeypatch, steady)
    assert run_dag(dagbag, logical_date=WINDOW_END + STEADY_WINDOW)[0] == "success"
    assert differences_from_expectation(conn, steady.expected) == []
