"""telegram_albums on the CeleryExecutor with two workers on routed queues, end to end.

Broker: the running Redis (a database number of its own), result backend and metadata: the
running Postgres. Worker ``worker-general`` serves the default, ``telegram`` and ``index``
queues, worker ``worker-vision`` the ``vision`` queue. A run of the sample archive must put
every task on the worker its queue names; then a run with real vision work has its vision
worker SIGKILLed (the whole worker: its Celery processes and the task) in the middle of a
vision task. The scheduler notices the missing heartbeats, fails that try, and the retry runs
on the other worker once it takes the vision queue (``airflow celery add-queue``, what an
operator or a standby configuration does when a vision node dies); the run succeeds and the
stores equal the clean run's. Everything started here is stopped at the end.
"""

from __future__ import annotations

import os
import signal
import socket
from datetime import UTC, datetime

import psycopg
import pytest
import redis

from devtools.airflow_stack import celery_env, stack_env
from devtools.sample import differences_from_expectation
from devtools.services import free_port, pipeline_env
from include.album.orchestration.deployment import INDEX_QUEUE, POOLS, TELEGRAM_QUEUE, VISION_QUEUE
from tests.e2e.common import (
    Stack,
    app_conn,
    create_databases,
    drop_databases,
    retried_vision_counts,
    undo_album_processing,
    vision_midway,
)

pytestmark = [pytest.mark.e2e, pytest.mark.celery, pytest.mark.integration]

BROKER_DB = 9  # of the running Redis; the other tests use 11 and 12
GENERAL, VISION = "worker-general", "worker-vision"
QUEUES = {GENERAL: ["default", TELEGRAM_QUEUE, INDEX_QUEUE], VISION: [VISION_QUEUE]}
HEARTBEAT_TIMEOUT = 15  # seconds without heartbeats before the scheduler fails a task of a dead worker


def flush_broker() -> None:
    redis.Redis(host="127.0.0.1", port=6379, db=BROKER_DB).flushdb()


@pytest.fixture(scope="module")
def stack(tmp_path_factory, sample_archive, s3_endpoint, falkordb_port):
    started = datetime.now(UTC)
    home = tmp_path_factory.mktemp("airflow-celery")
    archive, expected = sample_archive
    app, meta_dsn, bucket, databases = create_databases(f"celery_{os.getpid()}", expected, s3_endpoint)
    flush_broker()
    api_port = free_port()
    env = {
        **stack_env(home, meta_dsn=meta_dsn, api_port=api_port, executor="CeleryExecutor"),
        "AIRFLOW__CORE__PARALLELISM": "8",
        **celery_env(broker_url=f"redis://127.0.0.1:6379/{BROKER_DB}", result_backend_dsn=meta_dsn,
                     heartbeat_timeout=HEARTBEAT_TIMEOUT),
        **pipeline_env(pg=app, s3_endpoint=s3_endpoint, telegram_extra={"archive": str(archive)},
                       qdrant_path=home / "qdrant", settings={"s3_bucket": bucket}, falkordb_port=falkordb_port),
    }
    stack = Stack(home, env, api_port, meta_dsn)
    stack.app, stack.expected, stack.bucket, stack.started = app, expected, bucket, started
    stack.s3_endpoint, stack.falkordb_port = s3_endpoint, falkordb_port
    try:
        stack.boot(POOLS, triggerer=False)
        stack.start_worker(GENERAL, QUEUES[GENERAL], concurrency=2)
        stack.start_worker(VISION, QUEUES[VISION], concurrency=2)
        yield stack
    finally:
        stack.stop_all()
        flush_broker()
        drop_databases(databases)


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_every_task_runs_on_the_worker_of_its_queue_and_the_run_stores_the_sample(stack):
    run_id = stack.trigger()
    assert stack.wait_for_run(run_id) == "success"
    instances = stack.task_instances(run_id)
    placement = {}
    for (task_id, map_index), ti in sorted(instances.items()):
        if ti["state"] == "skipped":
            continue
        assert ti["state"] == "success", (task_id, map_index, ti["state"])
        worker = next(name for name, queues in QUEUES.items() if ti["queue"] in queues)
        assert ti["hostname"] == worker, f"{task_id}[{map_index}] on queue {ti['queue']} ran on {ti['hostname']}"
        placement[f"{task_id}[{map_index}]"] = f"{ti['queue']} -> {ti['hostname']}"
    queues = {task_id: ti["queue"] for (task_id, _), ti in instances.items()}
    assert queues["ingest"] == TELEGRAM_QUEUE and queues["album.vision"] == VISION_QUEUE
    assert queues["album.index"] == queues["index_posts"] == INDEX_QUEUE and queues["report"] == "default"
    assert {ti["hostname"] for ti in instances.values()} == {GENERAL, VISION}
    print("\n".join(f"{task}: {where}" for task, where in placement.items()))
    with app_conn(stack) as conn:
        assert differences_from_expectation(conn, stack.expected) == []


def test_a_vision_worker_killed_mid_task_is_replaced_by_the_other_worker_and_the_stores_end_as_a_clean_run(stack):
    clean, clean_raw = stack.stores(since=stack.started), stack.stores()
    album, shas, reset_at = undo_album_processing(stack)
    summaries = sorted(album["meta"]["enrichment"]["s3_keys"].values())

    run_id = stack.trigger()
    running = vision_midway(stack, run_id, shas)
    assert running["hostname"] == VISION and running["try_number"] == 1
    stack.stop(VISION, sig=signal.SIGKILL)  # the whole worker: Celery's processes and the task's
    stack.wait_for("the killed worker's task process to be gone", lambda: not process_alive(running["pid"]),
                   timeout=10, every=0.2)
    # The other worker takes over the vision queue, as an operator (or a standby setup) does.
    stack.cli("celery", "add-queue", "--celery-hostname", f"{GENERAL}@{socket.gethostname()}",
              "--queues", VISION_QUEUE)

    assert stack.wait_for_run(run_id) == "success"
    vision = stack.task_instances(run_id)[("album.vision", 0)]
    assert vision["state"] == "success" and vision["try_number"] >= 2 and vision["hostname"] == GENERAL
    with psycopg.connect(stack.meta_dsn) as meta:
        first_try = meta.execute("SELECT state, hostname FROM task_instance_history WHERE dag_id = 'telegram_albums' "
                                 "AND run_id = %s AND task_id = 'album.vision' AND try_number = 1",
                                 (run_id,)).fetchone()
    assert first_try == ("failed", VISION) or first_try == ("up_for_retry", VISION), first_try
    analysed, cached = retried_vision_counts(stack, run_id, vision["try_number"])
    assert analysed + cached == 4 and cached >= running["results_stored"]  # only what was lost is redone

    with app_conn(stack) as conn:
        redone = conn.execute("SELECT count(*) AS n, min(analyzed_at) AS first FROM vision_results "
                              "WHERE sha256 = ANY(%s)", (shas,)).fetchone()
    assert redone["n"] == 4 and redone["first"] >= reset_at
    after, after_raw = stack.stores(since=stack.started), stack.stores()
    assert after == clean
    assert after_raw["qdrant"] == clean_raw["qdrant"] and after_raw["graph"] == clean_raw["graph"]
    assert sorted(after_raw["s3"]) == sorted(clean_raw["s3"])
    assert {k for k in clean_raw["s3"] if clean_raw["s3"][k] != after_raw["s3"][k]} <= set(summaries)
    print(f"killed {VISION} while it ran album.vision try 1 (pid {running['pid']}, "
          f"{running['results_stored']}/4 results stored); try {vision['try_number']} ran on {vision['hostname']}")
