"""telegram_albums under a real Airflow: scheduler, dag-processor, triggerer and api-server with
the LocalExecutor, metadata on the running Postgres; REST trigger, `airflow backfill create`,
Deadline Alerts and StatsD on the wire. Everything started here is stopped at the end.

Scheduler-level faults (see docs/reliability.md): a backfill over ingested windows, a REST clear
of one mapped album and of a whole finished run — each leaving every store (Postgres, S3, Qdrant,
graph) identical — a task process SIGKILLed mid-work and retried by Airflow, and no secret in any
log, XCom or rendered field. The tests share one stack and run in file order.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
import pytest

from devtools.airflow_stack import DAG, StatsdSink, stack_env
from devtools.archive_edits import add_channels
from devtools.sample import (
    HISTORY_START,
    build_history_archive,
    build_live_archive,
    differences_from_expectation,
    register_sample,
)
from devtools.services import free_port, pipeline_env
from include.album.orchestration.deployment import POOLS
from include.album.stores import db
from tests.e2e.common import (
    RUN_TIMEOUT,
    Stack,
    app_conn,
    create_databases,
    drop_databases,
    retried_vision_counts,
    undo_album_processing,
    vision_midway,
)
from tests.helpers import RecordingWebhook

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

HISTORY_DAYS = 3


@pytest.fixture(scope="module")
def stack(tmp_path_factory, sample_archive, s3_endpoint, falkordb_port):
    started = datetime.now(UTC)
    home = tmp_path_factory.mktemp("airflow-e2e")
    archive, expected = home / "archive", sample_archive[1]
    shutil.copytree(sample_archive[0], archive)  # private: the overlap test edits it
    # Channels with a past, registered by the history test only: nothing else pulls them before it.
    history = build_history_archive(home / "history-archive", channels=2, days=HISTORY_DAYS, per_day=15)
    add_channels(archive, home / "history-archive")
    app, meta_dsn, bucket, databases = create_databases(f"e2e_{os.getpid()}", expected, s3_endpoint)
    statsd, webhook = StatsdSink(), RecordingWebhook()
    api_port = free_port()
    # Fake credentials, distinctive so that the secrets test can look for them everywhere. The
    # archive transport ignores them, but the tasks read (and mask) them as in production.
    fake = {"api_hash": f"e2e-api-hash-{secrets.token_hex(8)}", "session": f"e2e-session-{secrets.token_hex(16)}",
            "s3_secret_key": f"e2e-s3-secret-{secrets.token_hex(12)}"}
    env = {
        **stack_env(home, meta_dsn=meta_dsn, api_port=api_port),
        **statsd.env(),
        "AIRFLOW_CONN_ALBUMS_ALERT_WEBHOOK": json.dumps(
            {"conn_type": "http", "extra": {"url": webhook.url}}),
        # The updates listener's own session (the triggerer runs it): the same archive, listening.
        "AIRFLOW_CONN_TELEGRAM_UPDATES": json.dumps({"conn_type": "generic", "extra": {"archive": str(archive)}}),
        **pipeline_env(pg=app, s3_endpoint=s3_endpoint,
                       telegram_extra={"archive": str(archive), "session": fake["session"]},
                       telegram_login=("12345", fake["api_hash"]),
                       s3_keys=("e2e-access-key", fake["s3_secret_key"]),
                       qdrant_path=home / "qdrant", settings={"s3_bucket": bucket},
                       falkordb_port=falkordb_port),
    }
    stack = Stack(home, env, api_port, meta_dsn)
    stack.app, stack.expected, stack.statsd, stack.webhook = app, expected, statsd, webhook.received
    stack.started, stack.secrets, stack.bucket = started, fake, bucket
    stack.s3_endpoint, stack.falkordb_port, stack.archive = s3_endpoint, falkordb_port, archive
    stack.history = history
    try:
        stack.boot(POOLS)
        yield stack
        if os.environ.get("TELEGRAM_ALBUMS_SCREENSHOTS"):  # a maintainer's hook: refresh docs/screenshots
            capture_grid(stack, Path(os.environ["TELEGRAM_ALBUMS_SCREENSHOTS"]))
    finally:
        stack.stop_all()
        statsd.close()
        webhook.close()
        drop_databases(databases)


def capture_grid(stack: Stack, folder: Path) -> None:
    """Headless Chromium screenshots: the first full run's grid and its mapped album groups,
    and the last run (the one whose 1-second deadline was missed)."""
    runs = stack.request("GET", "/api/v2/dags/telegram_albums/dagRuns", params={"state": "success"}).json()["dag_runs"]

    def album_groups(run: dict) -> int:  # (clears reset a run's start date: its duration says nothing)
        tis = stack.task_instances(run["dag_run_id"])
        return sum(1 for (task, _), ti in tis.items() if task == "album.vision" and ti["state"] == "success")

    full = max(runs, key=album_groups)["dag_run_id"]
    last = max(runs, key=lambda r: r["end_date"])["dag_run_id"]
    folder.mkdir(parents=True, exist_ok=True)
    pages = {"airflow-grid.png": f"{stack.api}/dags/telegram_albums/runs/{full}",
             "airflow-album-groups.png": f"{stack.api}/dags/telegram_albums/runs/{full}/tasks/album.vision/mapped",
             "airflow-deadline-missed.png": f"{stack.api}/dags/telegram_albums/runs/{last}"}
    with chromium(stack.home / "chromium", size="1600,1100") as driver:
        sign_in(driver, stack, "admin")
        for name, url in pages.items():
            driver.get(url)
            time.sleep(8)  # the grid renders after its API calls
            driver.save_screenshot(str(folder / name))


def test_a_run_triggered_through_the_rest_api_succeeds_and_stores_the_sample(stack):
    response = stack.request("POST", "/api/v2/dags/telegram_albums/dagRuns", json={"logical_date": None})
    assert response.status_code == 200, response.text
    assert stack.wait_for_run(response.json()["dag_run_id"]) == "success"
    with app_conn(stack) as conn:
        assert differences_from_expectation(conn, stack.expected) == []
        statuses = {r["status"] for r in db.fetch_all(conn, "albums_with_items")}
    assert statuses == {"assembled"}
    assert stack.webhook == []  # finished well inside its 900 s deadline: no alert


def test_backfill_over_already_ingested_windows_changes_no_store(stack):
    """Two backfill runs re-pull windows the first run ingested: every Postgres row, S3 object,
    Qdrant point and graph node/edge is identical afterwards."""
    before = stack.stores()
    stack.cli("backfill", "create", "--dag-id", "telegram_albums", "--from-date", "2026-01-05T10:05:00+00:00",
              "--to-date", "2026-01-05T10:10:00+00:00")

    def backfill_runs():
        runs = stack.request("GET", f"{DAG}/dagRuns", params={"run_type": "backfill"}).json()["dag_runs"]
        return runs if len(runs) >= 2 and all(r["state"] in ("success", "failed") for r in runs) else None

    runs = stack.wait_for("two backfill runs", backfill_runs, timeout=RUN_TIMEOUT, every=3)
    assert [r["state"] for r in runs] == ["success"] * len(runs)
    intervals = sorted((r["data_interval_start"], r["data_interval_end"]) for r in runs)
    assert intervals[0][0].startswith("2026-01-05T10:00") and intervals[-1][1].startswith("2026-01-05T10:10")
    for run in runs:  # the windows were really pulled again
        ingests = [ti for (task, _), ti in stack.task_instances(run["dag_run_id"]).items() if task == "ingest"]
        assert ingests and {ti["state"] for ti in ingests} == {"success"}
    assert stack.stores() == before
    with app_conn(stack) as conn:
        assert differences_from_expectation(conn, stack.expected) == []


def first_run(stack) -> str:
    """The REST-triggered run of the first test: the one that ingested and assembled everything."""
    runs = stack.request("GET", f"{DAG}/dagRuns", params={"run_type": "manual", "order_by": "run_after",
                                                          "limit": 1}).json()["dag_runs"]
    return runs[0]["dag_run_id"]


def test_clearing_one_mapped_album_reruns_its_group_and_changes_no_store(stack):
    """Clear one album's vision task with its downstream (as "clear" on a mapped album group in
    the UI): exactly that album's group and the report run again, find the album assembled for
    its composition, and every store is identical afterwards."""
    run_id = first_run(stack)
    tis = stack.task_instances(run_id)
    albums = sorted(index for task, index in tis if task == "album.vision")
    assert len(albums) == len(stack.expected["albums"])
    index = albums[-1]
    before = stack.stores()

    cleared = stack.clear(run_id, task_ids=[["album.vision", index]], include_downstream=True)
    assert cleared == sorted([(f"album.{step}", index) for step in ("vision", "summary", "enrich", "index")]
                             + [("report", -1)])
    assert stack.wait_for_run(run_id) == "success"
    after_tis = stack.task_instances(run_id)
    for key, ti in after_tis.items():
        assert ti["state"] == "success", key
        assert ti["try_number"] == tis[key]["try_number"] + (key in cleared), key  # the others did not run again
    log = stack.home / "logs" / "dag_id=telegram_albums" / f"run_id={run_id}" / "task_id=album.vision" / \
        f"map_index={index}" / f"attempt={after_tis[('album.vision', index)]['try_number']}.log"
    assert "already assembled for this composition; nothing to do" in log.read_text()
    assert stack.stores() == before


def test_a_vision_task_killed_with_sigkill_is_retried_and_the_stores_end_as_a_clean_run(stack):
    """SIGKILL of a task process under the real LocalExecutor, in the middle of its work.

    The clean run's processing of one album is undone (``undo_album_processing``); a
    REST-triggered run picks it up, and the test SIGKILLs the album's vision task process (the
    pid Airflow records for the running try) once it has stored at least one of the four
    results and before it has stored all of them. Airflow must retry it and the run succeed.

    The stores must then equal the clean run's, with one necessary exception: the album was
    really processed again, so the moments of that processing (analyzed_at, computed_at,
    assembled_at, indexed_at, updated_at: every timestamp later than the stack's start) and
    the measured durations (duration_ms, assembly_lag_seconds) are new. ``store_contents`` masks
    exactly those, everywhere; every other value — vision results, summary, enrichment, S3
    documents, Qdrant payloads and vectors, graph nodes and edges — must be identical, and
    Qdrant and the graph (which hold no processing times) are compared unmasked too.
    """
    clean, clean_raw = stack.stores(since=stack.started), stack.stores()
    album, shas, reset_at = undo_album_processing(stack)
    summaries = sorted(album["meta"]["enrichment"]["s3_keys"].values())

    run_id = stack.trigger()
    killed = vision_midway(stack, run_id, shas)
    os.kill(killed["pid"], signal.SIGKILL)

    assert stack.wait_for_run(run_id) == "success"
    vision = stack.task_instances(run_id)[("album.vision", 0)]
    assert vision["state"] == "success" and vision["try_number"] >= 2 and killed["try_number"] == 1
    with psycopg.connect(stack.meta_dsn) as meta:
        first_try = meta.execute("SELECT state, pid FROM task_instance_history WHERE dag_id = 'telegram_albums' "
                                 "AND run_id = %s AND task_id = 'album.vision' AND try_number = 1",
                                 (run_id,)).fetchone()
    assert first_try is not None and first_try[0] in ("up_for_retry", "failed") and first_try[1] == killed["pid"]
    analysed, cached = retried_vision_counts(stack, run_id, vision["try_number"])
    assert analysed + cached == 4 and cached >= killed["results_stored"]  # the retry redid only what was lost

    with app_conn(stack) as conn:
        redone = conn.execute("SELECT count(*) AS n, min(analyzed_at) AS first FROM vision_results "
                              "WHERE sha256 = ANY(%s)", (shas,)).fetchone()
    assert redone["n"] == 4 and redone["first"] >= reset_at  # really analysed again, each image once
    after, after_raw = stack.stores(since=stack.started), stack.stores()
    assert after == clean
    assert after_raw["qdrant"] == clean_raw["qdrant"] and after_raw["graph"] == clean_raw["graph"]
    assert sorted(after_raw["s3"]) == sorted(clean_raw["s3"])
    assert {k for k in clean_raw["s3"] if clean_raw["s3"][k] != after_raw["s3"][k]} <= set(summaries)
    print(f"SIGKILL: {killed}; first try ended {first_try[0]}; vision succeeded on try {vision['try_number']}")


def test_clearing_a_finished_run_reruns_it_and_changes_no_store(stack):
    """Clear every task of the last finished run (the previous test's, which processed an album):
    it runs again from migrate to report and every store is identical afterwards. Nothing is new
    on Telegram, so changed_channels finds no channel to pull and albums_ready no album: Airflow
    marks the run's ingest and album tasks removed.

    (The last run, not the first: the first keeps its seven album groups for the grid screenshots.)
    """
    runs = stack.request("GET", f"{DAG}/dagRuns", params={"run_type": "manual", "order_by": "-run_after",
                                                          "limit": 1}).json()["dag_runs"]
    run_id = runs[0]["dag_run_id"]
    assert run_id != first_run(stack)
    tis = stack.task_instances(run_id)
    assert ("album.vision", 0) in tis
    before = stack.stores()

    cleared = stack.clear(run_id)
    assert {task for task, _ in cleared} == {"migrate", "changed_channels", "ingest", "albums_ready",
                                             "album.vision", "album.summary", "album.enrich", "album.index",
                                             "index_posts", "report"}
    assert stack.wait_for_run(run_id) == "success"
    after_tis = stack.task_instances(run_id)
    for task in ("migrate", "changed_channels", "albums_ready", "index_posts", "report"):
        assert after_tis[(task, -1)]["state"] == "success"
        assert after_tis[(task, -1)]["try_number"] > tis[(task, -1)]["try_number"], task
    pulled = [key for key, ti in after_tis.items() if key[0] == "ingest" and ti["state"] == "success"
              and ti["try_number"] > tis.get(key, {"try_number": 0})["try_number"]]
    assert pulled == []  # nothing to pull: not a single ingest task ran
    assert {ti["state"] for (task, _), ti in after_tis.items() if task.startswith("album.")} <= {"removed", "skipped"}
    assert stack.stores() == before


def test_clearing_one_channels_ingest_in_a_backfill_run_repulls_only_that_channels_window(stack):
    """A backfill run pulls its window from every channel, one ingest task per channel here (three
    channels, under channels_mapped_per_run). Clearing one of them (as "clear" on a mapped task in
    the UI) pulls that channel's window again and nothing else runs again; every store is identical."""
    runs = stack.request("GET", f"{DAG}/dagRuns", params={"run_type": "backfill"}).json()["dag_runs"]
    run_id = sorted(runs, key=lambda r: r["data_interval_start"])[0]["dag_run_id"]
    tis = stack.task_instances(run_id)
    ingests = sorted(index for task, index in tis if task == "ingest")
    assert len(ingests) == len(stack.expected["channels"])
    before = stack.stores()

    cleared = stack.clear(run_id, task_ids=[["ingest", ingests[0]]], include_downstream=False)
    assert cleared == [("ingest", ingests[0])]
    assert stack.wait_for_run(run_id) == "success"
    after_tis = stack.task_instances(run_id)
    for key, ti in after_tis.items():
        assert ti["try_number"] == tis[key]["try_number"] + (key == ("ingest", ingests[0])), key
    label = after_tis[("ingest", ingests[0])]["rendered_map_index"]
    log = stack.home / "logs" / "dag_id=telegram_albums" / f"run_id={run_id}" / "task_id=ingest" / \
        f"map_index={ingests[0]}" / f"attempt={after_tis[('ingest', ingests[0])]['try_number']}.log"
    assert f"channel {label}: " in log.read_text()  # its window was pulled again
    assert stack.stores() == before


def test_statsd_carries_pipeline_and_airflow_metrics(stack):
    names = stack.statsd.names
    for name in ("airflow.telegram_albums.messages_pulled", "airflow.telegram_albums.albums_parsed.ok",
                 "airflow.telegram_albums.albums_assembled.ok", "airflow.telegram_albums.album_assembly_lag",
                 "airflow.telegram_albums.album_vision_summary_size",
                 "airflow.telegram_albums.album_aggregation_duration",
                 "airflow.telegram_albums.album_items_count.assembled"):
        assert name in names, f"{name} not received; got {sorted(n for n in names if 'telegram_albums' in n)}"
    assert "airflow.dagrun.duration.success.telegram_albums" in names
    assert any(n.startswith("airflow.ti.finish.telegram_albums.") for n in names)
    assert "airflow.scheduler_heartbeat" in names
    (stack.home / "statsd-names.txt").write_text("\n".join(sorted(names)))


def test_the_refresh_dag_and_a_telegram_albums_run_at_once_on_the_same_channel_lose_no_update(stack):
    """Both DAGs at once, on the same channel and album: the refresh finds edits of NEWS's album
    caption and of a post outside albums, while a telegram_albums run pulls NEWS again (its mark
    set back) and processes the same album (its processing undone). Every write either waits for
    the other (the album's lock, the loose posts' lock, the channel's lock) or is dropped as
    stale, so the stores end with every edit everywhere, and a sequential pass of both DAGs
    afterwards changes nothing and finds no drift."""
    from falkordb import FalkorDB

    from devtools.archive_edits import append_messages
    from devtools.sample import NEWS, SAMPLE_START
    from include.album.source.archive import ArchiveSender
    from include.album.stores.qdrant import album_point_id, post_point_id
    from tests.e2e.common import COLLECTION, GRAPH

    def edited(message_id: int, text: str):
        message = next(m for m in ArchiveSender(stack.archive).history(NEWS).messages if m.id == message_id)
        message.message, message.edit_date = text, message.date + timedelta(minutes=30)
        return message

    album, _, _ = undo_album_processing(stack)
    append_messages(stack.archive, NEWS, [edited(202, "Обзор города: новая редакция"),
                                          edited(201, "Главные новости дня (обновлено)")])
    with app_conn(stack) as conn:
        conn.execute("UPDATE channels SET hwm = 201, top_message = NULL WHERE id = %s", (NEWS,))
    refresh_day = SAMPLE_START.replace(hour=3, minute=30) + timedelta(days=1)
    # (unpaused for this test only; its cron waits for 03:30, so no scheduled run joins in)
    stack.request("PATCH", "/api/v2/dags/telegram_albums_refresh", json={"is_paused": False}).raise_for_status()
    refresh_run = stack.trigger("telegram_albums_refresh", logical_date=refresh_day)
    main_run = stack.trigger()
    assert stack.wait_for_run(refresh_run, dag_id="telegram_albums_refresh") == "success"
    assert stack.wait_for_run(main_run) == "success"
    runs = [stack.run(refresh_run, "telegram_albums_refresh"), stack.run(main_run)]
    assert max(r["start_date"] for r in runs) < min(r["end_date"] for r in runs), "the runs did not overlap"
    main_ingests = [key for key in stack.task_instances(main_run) if key[0] == "ingest"]
    assert main_ingests, "telegram_albums did not pull NEWS again"

    overlapped = stack.stores()
    with app_conn(stack) as conn:
        posts = {r["message_id"]: r["text"] for r in conn.execute(
            "SELECT message_id, text FROM posts WHERE channel_id = %s", (NEWS,))}
        current = conn.execute("SELECT * FROM media_groups WHERE id = %s", (album["id"],)).fetchone()
        unsettled = conn.execute("SELECT count(*) AS n FROM media_groups WHERE deleted_at IS NULL AND "
                                 "(status <> 'assembled' OR meta->'enrichment'->>'content_hash' <> content_hash "
                                 "OR meta->'index' IS NULL)").fetchone()["n"]
        to_index = db.fetch_all(conn, "posts_to_index", {"limit": 10})
    assert posts[202] == "Обзор города: новая редакция" and posts[201] == "Главные новости дня (обновлено)"
    assert current["caption_text"] == "Обзор города: новая редакция" and unsettled == 0 and to_index == []
    summary_key = sorted(current["meta"]["enrichment"]["s3_keys"].values())[0]
    summary = json.loads(stack.s3().get_object(Bucket=stack.bucket, Key=summary_key)["Body"].read())
    assert summary["assembled_at"] == current["meta"]["enrichment"]["assembled_at"]
    from qdrant_client import QdrantClient

    qdrant = QdrantClient(path=str(stack.home / "qdrant"))
    try:
        points = {str(p.id): p.payload["text"] for p in qdrant.retrieve(
            COLLECTION, [album_point_id(album["id"]), post_point_id(NEWS, 201)], with_payload=True)}
    finally:
        qdrant.close()
    assert "новая редакция" in points[album_point_id(album["id"])]
    assert "(обновлено)" in points[post_point_id(NEWS, 201)]
    graph = FalkorDB(host="127.0.0.1", port=stack.falkordb_port).select_graph(GRAPH)
    assert graph.query("MATCH (a:Album {album_id: $id}) RETURN a.caption_text", {"id": album["id"]}
                       ).result_set == [["Обзор города: новая редакция"]]

    # The same two DAGs one after the other: nothing left to change, no drift between the stores.
    sequential_refresh = stack.trigger("telegram_albums_refresh", logical_date=refresh_day + timedelta(minutes=1))
    assert stack.wait_for_run(sequential_refresh, dag_id="telegram_albums_refresh") == "success"
    assert stack.wait_for_run(stack.trigger()) == "success"
    drift = stack.request("GET", f"/api/v2/dags/telegram_albums_refresh/dagRuns/{sequential_refresh}/"
                                 "taskInstances/reconcile/xcomEntries/return_value").json()["value"]
    assert drift == {} or set(json.loads(drift).values() if isinstance(drift, str) else drift.values()) == {0}
    assert stack.stores() == overlapped
    stack.request("PATCH", "/api/v2/dags/telegram_albums_refresh", json={"is_paused": True}).raise_for_status()


def test_a_history_backfill_imports_the_past_while_a_live_run_pulls_the_same_channels_and_loses_nothing(stack):
    """`airflow backfill create --dag-id telegram_albums_history` over the days of two channels with
    a past (and a quiet one), while a telegram_albums run pulls the newest messages of the same
    channels: every message once, every album whole, assembled and indexed; the marks are the
    live run's; each history run imports its data interval's day."""
    from include.album.admin.channels import register_archive

    expected = stack.history
    ids = [c["id"] for c in expected["channels"]]
    with app_conn(stack) as conn:
        register_archive(conn, expected, {"history": ids})
        # Live from near the end: the live run pulls only the newest few, history the rest.
        conn.execute("UPDATE channels SET hwm = 40 WHERE id = ANY(%s)", (ids[:2],))
    dag = "/api/v2/dags/telegram_albums_history"
    stack.wait_for("telegram_albums_history to be parsed", lambda: stack.request("GET", dag).status_code == 200)
    stack.request("PATCH", dag, json={"is_paused": False}).raise_for_status()
    first = HISTORY_START + timedelta(days=1)  # the run dated D imports the day before D
    stack.cli("backfill", "create", "--dag-id", "telegram_albums_history", "--from-date", first.isoformat(),
              "--to-date", (first + timedelta(days=HISTORY_DAYS - 1)).isoformat(),
              "--dag-run-conf", json.dumps({"channels": ids}))
    live = stack.trigger()

    def backfill_runs():
        runs = stack.request("GET", f"{dag}/dagRuns", params={"run_type": "backfill"}).json()["dag_runs"]
        return runs if len(runs) == HISTORY_DAYS and all(r["state"] in ("success", "failed") for r in runs) else None

    runs = stack.wait_for("the history backfill", backfill_runs, timeout=RUN_TIMEOUT, every=3)
    assert stack.wait_for_run(live) == "success"
    assert [r["state"] for r in runs] == ["success"] * HISTORY_DAYS
    assert sorted(r["data_interval_start"][:10] for r in runs) == [
        (HISTORY_START + timedelta(days=n)).date().isoformat() for n in range(HISTORY_DAYS)]
    stack.request("PATCH", dag, json={"is_paused": True}).raise_for_status()
    stack.wait_for("no active run", lambda: not stack.active_runs(), timeout=RUN_TIMEOUT, every=2)
    with app_conn(stack) as conn:
        stored = {(r["channel_id"], r["message_id"]) for r in conn.execute(
            "SELECT channel_id, message_id FROM posts WHERE channel_id = ANY(%s)", (ids,))}
        albums = conn.execute("SELECT items_count, status, meta -> 'index' IS NOT NULL AS indexed FROM media_groups "
                              "WHERE channel_id = ANY(%s)", (ids,)).fetchall()
        marks = {r["id"]: r["hwm"] for r in conn.execute("SELECT id, hwm FROM channels WHERE id = ANY(%s)", (ids,))}
    assert stored == {(p["channel_id"], p["message_id"]) for p in expected["posts"]}  # each once
    assert len(albums) == len(expected["albums"])
    assert all(a["items_count"] == 3 and a["status"] == "assembled" and a["indexed"] for a in albums)
    tops = {c: max(p["message_id"] for p in expected["posts"] if p["channel_id"] == c) for c in ids}
    assert marks == tops  # the live run's marks; history moved none


# -- freshness: the Telegram updates listener, a trigger in the triggerer -----------------------


def clear_of_the_cron_tick(stack: Stack, seconds: float) -> None:
    """Wait, when the next 5-minute tick is less than ``seconds`` away, until its run is over: the
    runs these tests look at are the listener's, not the schedule's."""
    now = datetime.now(UTC)
    tick = now.replace(second=0, microsecond=0) + timedelta(minutes=5 - now.minute % 5)
    if (tick - now).total_seconds() < seconds:
        time.sleep((tick - now).total_seconds())
        schedule_caught_up(stack, tick)
    stack.wait_for("no active run", lambda: not stack.active_runs(), timeout=RUN_TIMEOUT, every=1)


def schedule_caught_up(stack: Stack, tick: datetime) -> None:
    """Wait until the scheduler has made the schedule's run of ``tick`` (seconds after the tick, or
    after a restart) and every run is over."""
    run_id = f"scheduled__{tick.isoformat()}"
    stack.wait_for(f"the schedule's run {run_id}", lambda: stack.request(
        "GET", f"{DAG}/dagRuns/{run_id}").status_code == 200, timeout=RUN_TIMEOUT, every=1)
    stack.wait_for("no active run", lambda: not stack.active_runs(), timeout=RUN_TIMEOUT, every=1)


def post_live(stack: Stack, name: str, *, first: int, channels: int, albums: int, seconds: float,
              delay: float = 15) -> dict:
    """Channels that post ``delay`` s from now (the listener hears new subscriptions within its
    10-s renewal): a live archive's channels added to the stack's archive and subscribed by a
    tenant of their own (acme's albums, which the browser test pages through, stay as they are)."""
    live = build_live_archive(stack.home / name, channels=channels, albums=albums, minutes=seconds / 60, first=first,
                              start=datetime.now(UTC) + timedelta(seconds=delay), seed=first, tenant="live")
    add_channels(stack.archive, stack.home / name)
    with app_conn(stack) as conn:
        register_sample(conn, live)
    return live


def indexed(stack: Stack, albums: list[dict]) -> dict[int, datetime] | None:
    """grouped id -> when the album was indexed, once every album is assembled and indexed."""
    with app_conn(stack) as conn:
        rows = conn.execute("SELECT grouped_id, items_count, status, indexed_at FROM media_groups "
                            "WHERE grouped_id = ANY(%s)", ([a["grouped_id"] for a in albums],)).fetchall()
    done = {r["grouped_id"]: r["indexed_at"] for r in rows if r["status"] == "assembled" and r["indexed_at"]
            and r["items_count"] == len(next(a for a in albums if a["grouped_id"] == r["grouped_id"])["message_ids"])}
    return done if len(done) == len(albums) else None


def album_run_ids(stack: Stack, grouped_ids: list[int]) -> set[str]:
    with app_conn(stack) as conn:
        return {r["run_id"] for r in conn.execute(
            "SELECT DISTINCT r.run_id FROM album_runs r JOIN media_groups g ON g.id = r.album_id "
            "WHERE g.grouped_id = ANY(%s) AND r.dag_id = 'telegram_albums'", (grouped_ids,))}


def ingest_labels(stack: Stack, since: datetime) -> list[str]:
    with psycopg.connect(stack.meta_dsn) as meta:
        return [r[0] for r in meta.execute(
            "SELECT rendered_map_index FROM task_instance WHERE dag_id = 'telegram_albums' AND task_id = 'ingest' "
            "AND state = 'success' AND start_date >= %s", (since,))]


@pytest.fixture(scope="class")
def scheduled(stack):
    """The scheduler making runs of its own (the listener's, the schedule's) for these tests only;
    once it has made the run it owes for the last tick (a run of the schedule that started while a
    test posts would pull what the listener's run should)."""
    stack.schedule(True)
    now = datetime.now(UTC)
    schedule_caught_up(stack, now.replace(second=0, microsecond=0) - timedelta(minutes=now.minute % 5))
    yield stack
    stack.schedule(False)


@pytest.mark.usefixtures("scheduled")
class TestFreshness:
    """A post heard by the listener is stored and indexed by the run it starts; a duplicate
    event pulls nothing; with the listener down, the schedule's run catches up."""

    def test_a_post_the_listener_hears_starts_a_run_that_stores_and_indexes_it(self, stack):
        post_heard_and_indexed(stack)

    def test_two_events_for_one_channel_make_one_pull(self, stack):
        duplicate_event_pulls_nothing(stack)

    def test_killing_the_triggerer_loses_nothing_the_next_scheduled_run_catches_up(self, stack):
        listener_down_caught_up(stack)


def post_heard_and_indexed(stack: Stack) -> None:
    clear_of_the_cron_tick(stack, 150)
    live = post_live(stack, "live-heard", first=100, channels=1, albums=1, seconds=3)
    album = live["live"][0]
    done = stack.wait_for("the album stored and indexed", lambda: indexed(stack, [album]), timeout=150)
    [run_id] = album_run_ids(stack, [album["grouped_id"]])
    assert run_id.startswith("asset_triggered__"), run_id  # the listener's run, not the schedule's
    events = stack.request("GET", f"{DAG}/dagRuns/{run_id}/upstreamAssetEvents").json()["asset_events"]
    heard = [c for e in events for c in e["extra"].get("payload", {}).get("channels", [])]
    assert {"id": album["channel_id"], "newest": album["message_ids"][-1]} in heard
    with app_conn(stack) as conn:
        assert differences_from_expectation(conn, live) == []
    lag = (done[album["grouped_id"]] - datetime.fromisoformat(album["last_item_at"])).total_seconds()
    print(f"posted -> indexed: {lag:.1f} s")  # (a figure for the log; the benchmark measures it)


def duplicate_event_pulls_nothing(stack: Stack) -> None:
    """A second event naming a channel already pulled (a second triggerer's, a late one) finds
    nothing above the mark: no pull, no request."""
    started = datetime.now(UTC)
    clear_of_the_cron_tick(stack, 120)
    live = post_live(stack, "live-twice", first=110, channels=1, albums=1, seconds=2)
    album = live["live"][0]
    stack.wait_for("the album stored and indexed", lambda: indexed(stack, [album]), timeout=150)
    [asset] = stack.request("GET", "/api/v2/assets", params={"name_pattern": "telegram.updates"}).json()["assets"]
    hint = {"channels": [{"id": album["channel_id"], "newest": album["message_ids"][-1]}]}
    response = stack.request("POST", "/api/v2/assets/events", json={"asset_id": asset["id"], "extra": hint})
    assert response.status_code == 200, response.text
    runs = stack.wait_for("the duplicate event's run", lambda: [
        r for r in stack.request("GET", f"{DAG}/dagRuns", params={"run_type": "asset_triggered"}).json()["dag_runs"]
        if r["state"] == "success" and datetime.fromisoformat(r["queued_at"]) > datetime.fromisoformat(
            response.json()["timestamp"])], timeout=150)
    assert runs
    channel = f"@{live['channels'][0]['username']}"
    assert [label for label in ingest_labels(stack, started) if channel in (label or "")] == [channel]


def listener_down_caught_up(stack: Stack) -> None:
    """The listener's triggerer SIGKILLed: what is posted while it is down is stored by the next
    run of the schedule (here triggered at once; a manual run takes the schedule's path: the
    change check), each album once; the triggerer restarted takes the lease when it runs out."""
    clear_of_the_cron_tick(stack, 200)
    stack.stop("triggerer", signal.SIGKILL)
    live = post_live(stack, "live-down", first=120, channels=2, albums=3, seconds=6, delay=3)
    last = max(datetime.fromisoformat(a["last_item_at"]) for a in live["live"])
    time.sleep(max(0.0, (last - datetime.now(UTC)).total_seconds()) + 8)
    assert not album_run_ids(stack, [a["grouped_id"] for a in live["live"]])  # nobody heard them
    run_id = stack.trigger()
    assert stack.wait_for_run(run_id) == "success"
    assert indexed(stack, live["live"])
    assert album_run_ids(stack, [a["grouped_id"] for a in live["live"]]) == {run_id}
    with app_conn(stack) as conn:
        assert differences_from_expectation(conn, live) == []
        counts = conn.execute("SELECT count(*) AS n FROM media_groups WHERE grouped_id = ANY(%s)",
                              ([a["grouped_id"] for a in live["live"]],)).fetchone()
    assert counts["n"] == len(live["live"])
    stack.start("triggerer", "triggerer")  # (the deadline test's callback runs there)


def test_a_run_held_past_a_one_second_deadline_fires_the_alert(stack):
    stack.stop("dag-processor")
    stack.start("dag-processor", "dag-processor", env={**stack.env, "TELEGRAM_ALBUMS_DEADLINE_SECONDS": "1"})

    def reparsed():
        versions = stack.request("GET", "/api/v2/dags/telegram_albums/dagVersions").json()["dag_versions"]
        return len(versions) >= 2

    stack.wait_for("the DAG to be reparsed with a 1-second deadline", reparsed, timeout=120, every=2)
    response = stack.request("POST", "/api/v2/dags/telegram_albums/dagRuns", json={"logical_date": None})
    run_id = response.json()["dag_run_id"]
    alert = stack.wait_for("the deadline webhook", lambda: [w for w in stack.webhook if w["run_id"] == run_id],
                           timeout=RUN_TIMEOUT, every=1)
    assert alert[0]["state"] in ("queued", "running")
    assert stack.wait_for_run(run_id) == "success"
    stack.wait_for("the deadline metric", lambda: "airflow.telegram_albums.deadline_missed" in stack.statsd.names,
                   timeout=30)


@contextmanager
def chromium(profile: Path, size: str = "1400,1000") -> Iterator[Any]:
    """Debian's Chromium, headless, through its chromedriver (.ci/run installs both)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     f"--window-size={size}", f"--user-data-dir={profile}"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    driver.implicitly_wait(10)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def browser(stack, tmp_path):
    with chromium(tmp_path / "chromium") as driver:
        yield driver


def sign_in(browser, stack, name: str) -> None:
    from selenium.webdriver.common.by import By

    from devtools.airflow_stack import USERS

    browser.get(f"{stack.api}/auth/login/")
    browser.find_element(By.NAME, "username").send_keys(name)
    browser.find_element(By.NAME, "password").send_keys(USERS[name][1])
    browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    stack.wait_for("the sign-in", lambda: any(c["name"] == "_token" for c in browser.get_cookies()), timeout=30)


def on_page(browser, heading: str, css: str) -> list:
    """The elements matching ``css`` once the page whose heading starts with ``heading`` has
    loaded, else []: a click's navigation replaces the document, and until the new one is there
    the old one's elements go stale."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By

    try:
        if browser.find_element(By.TAG_NAME, "h1").text.startswith(heading):
            found = browser.find_elements(By.CSS_SELECTOR, css)
            return found if all(element.text is not None for element in found) else []
    except StaleElementReferenceException:
        pass
    return []


def test_the_albums_view_in_a_browser_signs_in_shows_searches_and_requeues(stack, browser, tmp_path):
    """Refused without a session; signed in, the Albums page inside the UI shows the sample's
    albums newest first with their thumbnails loaded in position order; pages of two albums
    show each album once; a channel's page and an album's page open from a card; search finds
    an album; a quarantined album is re-queued with its button. Screenshots for README
    (docs/screenshots with TELEGRAM_ALBUMS_SCREENSHOTS)."""
    import httpx
    from selenium.webdriver.common.by import By

    stack.wait_for("no active run", lambda: not stack.active_runs(), timeout=RUN_TIMEOUT, every=2)
    view = f"{stack.api}/telegram-albums/"
    assert httpx.get(f"{view}?tenant=acme").status_code == 401
    browser.get(f"{view}?tenant=acme")
    assert "Not authenticated" in browser.find_element(By.TAG_NAME, "body").text
    shots = Path(os.environ.get("TELEGRAM_ALBUMS_SCREENSHOTS") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)

    sign_in(browser, stack, "admin")
    browser.get(f"{stack.api}/plugin/albums")  # the navigation entry: the view inside Airflow's UI
    frame = browser.find_element(By.TAG_NAME, "iframe")
    assert frame.get_attribute("src").endswith("/telegram-albums/")
    stack.wait_for("the albums in the frame", lambda: browser.switch_to.frame(frame) or
                   browser.find_elements(By.CSS_SELECTOR, "section.card"), timeout=30)
    browser.switch_to.default_content()
    browser.save_screenshot(str(shots / "albums-view.png"))

    with app_conn(stack) as conn:
        newest_first = [r["id"] for r in conn.execute(
            "SELECT g.id FROM media_groups g JOIN subscriptions s ON s.channel_id = g.channel_id "
            "WHERE s.tenant_id = 'acme' AND g.deleted_at IS NULL ORDER BY g.posted_at DESC, g.id DESC")]
    browser.get(f"{view}?tenant=acme")
    cards = browser.find_elements(By.CSS_SELECTOR, "section.card")
    assert [int(c.get_attribute("data-album")) for c in cards] == newest_first
    for card in cards:  # each links to the album task that enriched it, read from what the task recorded
        assert card.find_elements(By.CSS_SELECTOR, 'a[href*="/tasks/album.enrich/mapped/"]'), card.text
        figures = card.find_elements(By.TAG_NAME, "figure")
        assert [int(f.get_attribute("data-position")) for f in figures] == list(range(len(figures)))
        for image in card.find_elements(By.TAG_NAME, "img"):
            loaded = browser.execute_script("return arguments[0].complete && arguments[0].naturalWidth", image)
            assert loaded > 0, image.get_attribute("src")
    assert any(card.find_elements(By.TAG_NAME, "img") for card in cards)

    pages_of_two_albums(stack, browser, newest_first)
    channel_pages(stack, browser, shots)
    album_page_in_the_frame(stack, browser, shots)
    browser.get(f"{view}?tenant=acme")
    browser.find_element(By.NAME, "q").send_keys("Evening at the harbour")
    browser.find_element(By.CSS_SELECTOR, "form.search button").click()
    found = stack.wait_for("search results", lambda: on_page(browser, "Search in", "section.card"), timeout=60)
    assert "Evening at the harbour" in found[0].text
    browser.save_screenshot(str(shots / "albums-search.png"))

    album = newest_first[-1]
    with app_conn(stack) as conn:
        conn.execute("INSERT INTO album_failures (album_id, content_hash, step, error, attempts, quarantined_at) "
                     "SELECT id, content_hash, 'vision', 'OSError: the e2e test quarantined it', 4, now() "
                     "FROM media_groups WHERE id = %s", (album,))
    browser.get(f"{view}quarantine?tenant=acme")
    row = browser.find_element(By.CSS_SELECTOR, f'tr[data-album="{album}"]')
    browser.save_screenshot(str(shots / "albums-quarantine.png"))
    row.find_element(By.TAG_NAME, "button").click()
    stack.wait_for("the requeue", lambda: any("no quarantined albums" in element.text
                                              for element in on_page(browser, "Quarantine of", "body")), timeout=30)
    with app_conn(stack) as conn:
        assert conn.execute("SELECT 1 FROM album_failures WHERE album_id = %s", (album,)).fetchone() is None


def pages_of_two_albums(stack, browser, newest_first: list[int]) -> None:
    """Two albums a page (``limit``): following "older albums →" until there is none shows every
    album of the tenant once, newest first."""
    from selenium.webdriver.common.by import By

    assert len(newest_first) > 4  # three pages at least
    browser.get(f"{stack.api}/telegram-albums/?tenant=acme&limit=2")
    shown, pages = [], 1
    while True:
        cards = browser.find_elements(By.CSS_SELECTOR, "section.card")
        assert len(cards) <= 2
        shown += [int(card.get_attribute("data-album")) for card in cards]
        older = browser.execute_script("const a = document.querySelector('a[rel=next]'); return a && a.href")
        if not older:
            break
        browser.find_element(By.CSS_SELECTOR, "a[rel=next]").click()
        stack.wait_for("the next page", lambda target=older: browser.current_url == target and
                       browser.execute_script("return document.readyState") == "complete", timeout=30)
        pages += 1
    assert shown == newest_first and pages == -(-len(newest_first) // 2)


def channel_pages(stack, browser, shots: Path) -> None:
    """Inside Airflow's frame, a card's channel link opens the channel's page: its albums newest
    first, its state and how far its history reaches; a channel whose past was imported (by the
    history test) says so."""
    from selenium.webdriver.common.by import By

    from include.album.admin.channels import history_line, list_channels

    def facts() -> dict[str, str]:
        terms = browser.find_elements(By.CSS_SELECTOR, "dl.facts dt")
        return {term.text: term.find_element(By.XPATH, "following-sibling::dd[1]").text for term in terms}

    def albums_of(channel: dict) -> list[int]:
        with app_conn(stack) as conn:
            return [r["id"] for r in conn.execute(
                "SELECT id FROM media_groups WHERE channel_id = %s AND deleted_at IS NULL "
                "ORDER BY posted_at DESC, id DESC", (channel["id"],))]

    with app_conn(stack) as conn:
        channels = {r["username"]: r for r in list_channels(conn)}
    browser.get(f"{stack.api}/plugin/albums")
    frame = browser.find_element(By.TAG_NAME, "iframe")
    links = stack.wait_for("the cards' channel links", lambda: browser.switch_to.frame(frame) or
                           browser.find_elements(By.CSS_SELECTOR, "section.card a.channel"), timeout=30)
    next(link for link in links if link.text == "@album_lab").click()
    cards = stack.wait_for("the channel's page", lambda: on_page(browser, "@album_lab", "section.card"), timeout=30)
    lab = channels["album_lab"]
    assert [int(card.get_attribute("data-album")) for card in cards] == albums_of(lab)
    shown = facts()
    assert shown["State"] == lab["state"] == "active"
    assert shown["History"] == (history_line(lab) or "not imported")
    browser.switch_to.default_content()
    browser.save_screenshot(str(shots / "albums-channel.png"))

    past = channels["past_000"]
    browser.get(f"{stack.api}/telegram-albums/channel/{past['id']}?tenant=history")
    cards = browser.find_elements(By.CSS_SELECTOR, "section.card")
    assert [int(card.get_attribute("data-album")) for card in cards] == albums_of(past)
    shown = facts()
    assert shown["State"] == past["state"] == "active"
    assert shown["History"] == history_line(past) and shown["History"].split("; ")[-1].startswith("imported ")


def album_page_in_the_frame(stack, browser, shots: Path) -> None:
    """Inside Airflow's frame: a card opens its album's page; every image loaded, in position
    order; the post's link on Telegram; a run link navigates Airflow's UI to that task. Then a
    video plays, a PDF's first page shows and its download is the PDF, and a GIF plays by itself,
    muted and looping."""
    from selenium.webdriver.common.by import By

    browser.get(f"{stack.api}/plugin/albums")
    frame = browser.find_element(By.TAG_NAME, "iframe")
    links = stack.wait_for("the cards in the frame", lambda: browser.switch_to.frame(frame) or
                           browser.find_elements(By.CSS_SELECTOR, "section.card h2 a"), timeout=30)
    with app_conn(stack) as conn:
        photos = conn.execute("SELECT g.id, c.username, min(i.message_id) AS first FROM media_groups g "
                              "JOIN channels c ON c.id = g.channel_id JOIN media_group_items i ON i.group_id = g.id "
                              "WHERE g.album_kind = 'photo' AND c.username = 'album_lab' GROUP BY g.id, c.username "
                              "ORDER BY g.id LIMIT 1").fetchone()
    next(link for link in links if link.get_attribute("href").split("?")[0].endswith(f"/album/{photos['id']}")).click()
    items = stack.wait_for("the album's page", lambda: on_page(browser, f"Album {photos['id']}", "article.item"),
                           timeout=30)
    assert [int(item.get_attribute("data-position")) for item in items] == list(range(len(items)))
    for image in browser.find_elements(By.CSS_SELECTOR, "article.item img"):
        stack.wait_for("an image", lambda i=image: browser.execute_script(
            "return arguments[0].complete && arguments[0].naturalWidth", i), timeout=30)
    telegram = browser.find_element(By.PARTIAL_LINK_TEXT, "the post on Telegram")
    assert telegram.get_attribute("href") == f"https://t.me/album_lab/{photos['first']}"
    browser.switch_to.default_content()
    browser.save_screenshot(str(shots / "albums-album.png"))
    browser.switch_to.frame(browser.find_element(By.TAG_NAME, "iframe"))
    run = browser.find_element(By.CSS_SELECTOR, "p.runs a[data-top]")
    target = run.get_attribute("href")
    run.click()
    browser.switch_to.default_content()
    assert urlsplit(target).path.startswith("/dags/telegram_albums/runs/") and "/tasks/album.enrich/mapped/" in target
    # (Airflow's page may add to its address once it loads, the try it shows: ?try_number=1)
    stack.wait_for("Airflow's page of the run's task", lambda: browser.current_url.startswith(stack.api) and urlsplit(
        browser.current_url).path.startswith(urlsplit(target).path), timeout=30)

    with app_conn(stack) as conn:
        mixed, documents = (conn.execute(  # acme's, and not deleted by another test of the module
            "SELECT min(g.id) AS id FROM media_groups g JOIN subscriptions s ON s.channel_id = g.channel_id "
            "AND s.tenant_id = 'acme' WHERE g.album_kind = %s AND g.deleted_at IS NULL AND EXISTS (SELECT 1 FROM "
            "media_group_items i JOIN posts p ON p.channel_id = g.channel_id AND p.message_id = i.message_id "
            "WHERE i.group_id = g.id AND p.media_mime = %s AND p.media_sha256 IS NOT NULL)",
            (kind, mime)).fetchone()["id"] for kind, mime in (("mixed", "video/mp4"), ("document", "application/pdf")))
    browser.get(f"{stack.api}/telegram-albums/album/{mixed}?tenant=acme")
    video = browser.find_element(By.CSS_SELECTOR, "article.item video")
    browser.execute_script("arguments[0].muted = true; arguments[0].play();", video)
    stack.wait_for("the video to play", lambda: browser.execute_script("return arguments[0].currentTime", video) > 0,
                   timeout=30)
    browser.get(f"{stack.api}/telegram-albums/album/{documents}?tenant=acme")
    stack.wait_for("the PDF's first page", lambda: browser.execute_script(
        "const i = document.querySelector('article.item img.pdf'); return i && i.complete && i.naturalWidth"),
        timeout=30)
    download = browser.find_element(By.CSS_SELECTOR, "article.item a[download]")
    head = browser.execute_async_script(
        "const done = arguments[1]; fetch(arguments[0]).then(r => r.arrayBuffer())"
        ".then(b => done(String.fromCharCode(...new Uint8Array(b.slice(0, 5)))));", download.get_attribute("href"))
    assert head == "%PDF-" and download.text.endswith(".pdf")

    with app_conn(stack) as conn:
        gif = conn.execute("SELECT i.group_id, i.position FROM media_group_items i JOIN media_groups g "
                           "ON g.id = i.group_id WHERE i.media_kind = 'gif' AND g.deleted_at IS NULL").fetchone()
    browser.get(f"{stack.api}/telegram-albums/album/{gif['group_id']}?tenant=acme")
    item = browser.find_element(By.CSS_SELECTOR, f'article.item[data-position="{gif["position"]}"]')
    assert item.find_element(By.TAG_NAME, "h3").text.endswith("· gif")
    player = item.find_element(By.TAG_NAME, "video")
    stack.wait_for("the GIF to play without a click", lambda: browser.execute_script(
        "return arguments[0].currentTime", player) > 0, timeout=30)
    assert browser.execute_script("const v = arguments[0]; return [v.muted, v.loop, v.controls, v.paused]",
                                  player) == [True, True, False, False]


def test_no_secret_reaches_a_task_log_an_xcom_or_a_rendered_field(stack):
    """After every run of the module: the Telegram api_hash and session string and the S3 secret
    key (distinctive fake values in the connections) appear in no task or DAG-processor log
    file, no process log, no XCom value and no rendered template field."""
    scanned: dict[str, str] = {}
    for path in sorted((stack.home / "logs").rglob("*")):
        if path.is_file():
            scanned[str(path.relative_to(stack.home))] = path.read_text(errors="replace")
    task_logs = [name for name, text in scanned.items() if "dag_id=telegram_albums" in name and text.strip()]
    for task in ("ingest", "album.vision", "album.enrich", "album.index", "index_posts"):  # all read connections
        assert any(f"task_id={task}/" in name for name in task_logs), f"no log of {task} to scan"
    for path in sorted(stack.home.glob("*.log")):
        scanned[path.name] = path.read_text(errors="replace")
    with psycopg.connect(stack.meta_dsn) as meta:
        xcoms = meta.execute("SELECT dag_id, run_id, task_id, map_index, key, value::text FROM xcom").fetchall()
        rendered = meta.execute("SELECT dag_id, run_id, task_id, map_index, rendered_fields::text "
                                "FROM rendered_task_instance_fields").fetchall()
    assert xcoms and rendered
    scanned.update({f"xcom {row[:-1]}": row[-1] or "" for row in xcoms})
    scanned.update({f"rendered fields {row[:-1]}": row[-1] or "" for row in rendered})
    leaks = [(name, where) for where, text in scanned.items() for name, secret in stack.secrets.items()
             if secret in text]
    assert leaks == []
