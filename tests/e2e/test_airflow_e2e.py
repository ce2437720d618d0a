"""telegram_albums under a real Airflow: scheduler, dag-processor, triggerer and api-server with
the LocalExecutor, metadata on the running Postgres; REST trigger, `airflow backfill create`,
Deadline Alerts and StatsD on the wire. Everything started here is stopped at the end.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import psycopg
import pytest

from include.album import db
from include.album.channels import register_sample
from include.album.localenv import DAGS_FOLDER, REPO, PgTarget, free_port, pipeline_env, recreate_database
from include.album.sample import differences_from_expectation
from tests.conftest import ADMIN_DSN, PG_HOST, PG_PORT, PG_USER
from tests.helpers import RecordingWebhook, snapshot

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

AIRFLOW = str(Path(sys.executable).with_name("airflow"))
RUN_TIMEOUT = 420


class StatsdSink:
    """A UDP socket that records the StatsD metric names it receives."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.5)
        self.port = self.sock.getsockname()[1]
        self.names: set[str] = set()
        self._stop = False
        threading.Thread(target=self._receive, daemon=True).start()

    def _receive(self) -> None:
        while not self._stop:
            try:
                data = self.sock.recv(65535)
            except OSError:
                continue
            for line in data.decode(errors="replace").splitlines():
                self.names.add(line.split(":", 1)[0])

    def close(self) -> None:
        self._stop = True
        self.sock.close()


class Stack:
    def __init__(self, home: Path, env: dict[str, str], api_port: int):
        self.home, self.env, self.api_port = home, env, api_port
        self.processes: dict[str, subprocess.Popen] = {}
        self.api = f"http://127.0.0.1:{api_port}"
        self.token: str | None = None

    def cli(self, *args: str, timeout: int = 180) -> str:
        done = subprocess.run([AIRFLOW, *args], env=self.env, capture_output=True, text=True, timeout=timeout)
        assert done.returncode == 0, f"airflow {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
        return done.stdout

    def start(self, name: str, *args: str, env: dict[str, str] | None = None) -> None:
        log = open(self.home / f"{name}.log", "ab")  # noqa: SIM115 - closed with the process
        self.processes[name] = subprocess.Popen([AIRFLOW, *args], env=env or self.env, stdout=log, stderr=log,
                                                start_new_session=True)

    def stop(self, name: str) -> None:
        process = self.processes.pop(name)
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def stop_all(self) -> None:
        for name in list(self.processes):
            self.stop(name)

    def request(self, method: str, path: str, **kwargs) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        return httpx.request(method, f"{self.api}{path}", headers=headers, timeout=30, **kwargs)

    def wait_for(self, what: str, check, timeout: float = 180, every: float = 1.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                result = check()
            except (httpx.HTTPError, KeyError, AssertionError):
                result = None
            if result:
                return result
            time.sleep(every)
        logs = "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in self.home.glob("*.log"))
        raise AssertionError(f"timed out waiting for {what}\n{logs}")

    def run_state(self, run_id: str) -> str:
        return self.request("GET", f"/api/v2/dags/telegram_albums/dagRuns/{run_id}").json()["state"]

    def wait_for_run(self, run_id: str) -> str:
        return self.wait_for(f"run {run_id} to finish",
                             lambda: (s := self.run_state(run_id)) in ("success", "failed") and s,
                             timeout=RUN_TIMEOUT, every=2)


@pytest.fixture(scope="module")
def stack(tmp_path_factory, sample_archive, s3_endpoint, falkordb_port):
    home = tmp_path_factory.mktemp("airflow-e2e")
    tag = f"{os.getpid()}"
    meta_db, app_db = f"telegram_albums_e2e_meta_{tag}", f"telegram_albums_e2e_app_{tag}"
    recreate_database(ADMIN_DSN, meta_db)
    recreate_database(ADMIN_DSN, app_db)
    app = PgTarget(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname=app_db)
    archive, expected = sample_archive
    with db.connect(app.dsn) as conn:
        conn.autocommit = True
        db.migrate(conn)
        register_sample(conn, expected)
    bucket = f"albums-e2e-{tag}"
    import boto3

    boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1", aws_access_key_id="x",
                 aws_secret_access_key="x").create_bucket(Bucket=bucket)

    statsd, webhook = StatsdSink(), RecordingWebhook()
    api_port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "PYTEST"))},
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"postgresql+psycopg://{PG_USER}@{PG_HOST}:{PG_PORT}/{meta_db}",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
        "AIRFLOW__API_AUTH__JWT_SECRET": "e2e-test-secret-not-for-production",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
        "AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL": "1",
        "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW__METRICS__STATSD_ON": "True",
        "AIRFLOW__METRICS__STATSD_HOST": "127.0.0.1",
        "AIRFLOW__METRICS__STATSD_PORT": str(statsd.port),
        "AIRFLOW__METRICS__STATSD_PREFIX": "airflow",
        "AIRFLOW_CONN_ALBUMS_ALERT_WEBHOOK": json.dumps(
            {"conn_type": "http", "extra": {"url": webhook.url}}),
        **pipeline_env(pg=app, s3_endpoint=s3_endpoint, telegram_extra={"archive": str(archive)},
                       qdrant_path=home / "qdrant", settings={"s3_bucket": bucket},
                       falkordb_port=falkordb_port),
    }
    stack = Stack(home, env, api_port)
    stack.app, stack.expected, stack.statsd, stack.webhook = app, expected, statsd, webhook.received
    try:
        stack.cli("db", "migrate", timeout=300)
        stack.cli("pools", "set", "telegram", "1", "one Telegram session")
        stack.cli("pools", "set", "album_index", "1", "Qdrant local mode")
        stack.start("api-server", "api-server", "--port", str(api_port))
        stack.start("scheduler", "scheduler")
        stack.start("dag-processor", "dag-processor")
        stack.start("triggerer", "triggerer")
        stack.wait_for("the api-server", lambda: httpx.get(f"{stack.api}/api/v2/monitor/health").status_code == 200)
        stack.token = stack.wait_for("a token", lambda: httpx.get(f"{stack.api}/auth/token").json()["access_token"])
        stack.wait_for("the DAG to be parsed", lambda: stack.request("GET", "/api/v2/dags/telegram_albums").status_code
                       == 200)
        assert stack.request("PATCH", "/api/v2/dags/telegram_albums", json={"is_paused": False}).status_code == 200
        yield stack
        if os.environ.get("TELEGRAM_ALBUMS_SCREENSHOTS"):  # a maintainer's hook: refresh docs/screenshots
            capture_grid(stack, Path(os.environ["TELEGRAM_ALBUMS_SCREENSHOTS"]))
    finally:
        stack.stop_all()
        statsd.close()
        webhook.close()
        with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
            for name in (meta_db, app_db):
                conn.execute(psycopg.sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                    psycopg.sql.Identifier(name)))


def capture_grid(stack: Stack, folder: Path) -> None:
    """Headless Chromium screenshots: the first full run's grid and its mapped album groups,
    and the last run (the one whose 1-second deadline was missed)."""
    from datetime import datetime

    runs = stack.request("GET", "/api/v2/dags/telegram_albums/dagRuns", params={"state": "success"}).json()["dag_runs"]

    def duration(run: dict) -> float:
        return (datetime.fromisoformat(run["end_date"]) - datetime.fromisoformat(run["start_date"])).total_seconds()

    full = max(runs, key=duration)["dag_run_id"]
    last = max(runs, key=lambda r: r["end_date"])["dag_run_id"]
    folder.mkdir(parents=True, exist_ok=True)
    pages = {"airflow-grid.png": f"{stack.api}/dags/telegram_albums/runs/{full}",
             "airflow-album-groups.png": f"{stack.api}/dags/telegram_albums/runs/{full}/tasks/album.vision/mapped",
             "airflow-deadline-missed.png": f"{stack.api}/dags/telegram_albums/runs/{last}"}
    for name, url in pages.items():
        subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                        "--disable-background-networking", "--disable-component-update", "--disable-sync",
                        f"--user-data-dir={stack.home / 'chromium'}", "--window-size=1600,1100",
                        "--virtual-time-budget=15000", f"--screenshot={folder / name}", url],
                       capture_output=True, timeout=120)


def app_conn(stack):
    conn = db.connect(stack.app.dsn)
    conn.autocommit = True
    return conn


def test_a_run_triggered_through_the_rest_api_succeeds_and_stores_the_sample(stack):
    response = stack.request("POST", "/api/v2/dags/telegram_albums/dagRuns", json={"logical_date": None})
    assert response.status_code == 200, response.text
    assert stack.wait_for_run(response.json()["dag_run_id"]) == "success"
    with app_conn(stack) as conn:
        assert differences_from_expectation(conn, stack.expected) == []
        statuses = {r["status"] for r in db.fetch_all(conn, "albums_with_items")}
    assert statuses == {"assembled"}
    assert stack.webhook == []  # finished well inside its 900 s deadline: no alert


def test_backfill_over_two_windows_succeeds_without_duplicating_rows(stack):
    with app_conn(stack) as conn:
        before = snapshot(conn)
    stack.cli("backfill", "create", "--dag-id", "telegram_albums", "--from-date", "2026-01-05T10:05:00+00:00",
              "--to-date", "2026-01-05T10:10:00+00:00")

    def backfill_runs():
        runs = stack.request("GET", "/api/v2/dags/telegram_albums/dagRuns",
                             params={"run_type": "backfill"}).json()["dag_runs"]
        return runs if len(runs) >= 2 and all(r["state"] in ("success", "failed") for r in runs) else None

    runs = stack.wait_for("two backfill runs", backfill_runs, timeout=RUN_TIMEOUT, every=3)
    assert [r["state"] for r in runs] == ["success"] * len(runs)
    intervals = sorted((r["data_interval_start"], r["data_interval_end"]) for r in runs)
    assert intervals[0][0].startswith("2026-01-05T10:00") and intervals[-1][1].startswith("2026-01-05T10:10")
    with app_conn(stack) as conn:
        assert snapshot(conn)["counts"] == before["counts"]
        assert differences_from_expectation(conn, stack.expected) == []


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
