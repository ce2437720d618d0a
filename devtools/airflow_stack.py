"""A real Airflow on this machine for the end-to-end tests and the benchmark.

api-server, scheduler, dag-processor and triggerer (and, with the CeleryExecutor, Celery
workers) as separate processes on a Postgres metadata DB, tuned for short tasks (1-second
heartbeats, ``TUNING``: the default 5 s costs ~5 s per task). Runs are made and
watched through the REST API; everything started is stopped by ``stop_all``.

Several Celery workers on one machine need their own log-server port and their own name in
task instances (``hostname``): ``start_worker`` gives each both (``worker_name``).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
from psycopg.rows import dict_row

from devtools.services import DAGS_FOLDER, REPO, free_port

AIRFLOW = str(Path(sys.executable).with_name("airflow"))
DAG_ID = "telegram_albums"
DAG = f"/api/v2/dags/{DAG_ID}"
# What a task process calls itself (Airflow's task runner sets it with setproctitle).
TASK_PROCESS_TITLE = "airflow worker -- "
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
WORKER_NAME_ENV = "AIRFLOW_STACK_WORKER_NAME"
SCHEDULED = "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE"  # whether the scheduler makes runs of its own

# The Airflow settings the benchmark's figures depend on. The shipped configuration carries the
# same (docker-compose.airflow.yml, the Helm values in docs/scaling.md; tests/unit/test_compose.py
# compares them): with Airflow's default 5-s heartbeats every task instance costs ~5 s more.
TUNING = {
    "AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL": "1",    # a task reports its state within a second
    "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",  # the scheduler loop looks again every second
    "AIRFLOW__CORE__PARALLELISM": "4",                   # task instances at once (2 cores here)
}
LOCAL_EXECUTOR_TUNING = {
    # The LocalExecutor's workers start from a forkserver that has imported what the tasks import
    # (Telethon, qdrant_client, the provider hooks, the pipeline) and loaded the embedding model
    # (``orchestration.preload``): each task process is forked from a worker and inherits them
    # instead of importing them again (0.2-0.5 s a task, 0.7 s more for one that embeds; the pages
    # it touches are copied, ~50 MB more private memory per task).
    "AIRFLOW__SCHEDULER__MP_START_METHOD": "forkserver",
    "AIRFLOW__CORE__MP_FORKSERVER_PRELOAD": ",".join((
        "airflow", "airflow.executors.local_executor", "airflow.sdk.execution_time.task_runner",
        "airflow.providers.postgres.hooks.postgres", "airflow.providers.amazon.aws.hooks.s3",
        "airflow.providers.redis.hooks.redis", "include.album.orchestration.tasks",
        "include.album.orchestration.album_tasks", "include.album.steps.ingest", "include.album.steps.indexing",
        "include.album.providers.vision", "include.album.orchestration.preload")),
}
CELERY_TUNING = {
    "AIRFLOW__CELERY__WORKER_PREFETCH_MULTIPLIER": "1",  # a busy worker does not hoard queued tasks
    # Longer than the longest execution_timeout (60 min): the broker never redelivers a running task.
    "AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__VISIBILITY_TIMEOUT": "7200",
}


def sqlalchemy_url(dsn: str, scheme: str = "postgresql+psycopg") -> str:
    """A libpq conninfo as a SQLAlchemy URL; the host goes in the query, as it may be a socket
    directory (the embedded Postgres)."""
    parts = psycopg.conninfo.conninfo_to_dict(dsn)
    return (f"{scheme}://{parts.get('user', 'postgres')}@/{parts['dbname']}"
            f"?host={parts.get('host', '127.0.0.1')}&port={parts.get('port', 5432)}")


def worker_name() -> str:
    """``[core] hostname_callable`` of the stack's workers: the name ``start_worker`` gave this
    worker, so that task instances tell apart workers sharing one machine (else the FQDN)."""
    import socket

    return os.environ.get(WORKER_NAME_ENV) or socket.getfqdn()


def celery_env(*, broker_url: str, result_backend_dsn: str, heartbeat_timeout: int = 300) -> dict[str, str]:
    """CeleryExecutor settings: Redis broker, Postgres result backend (a libpq conninfo).

    ``heartbeat_timeout``: seconds without a heartbeat after which the scheduler fails a
    running task instance (a worker that died with its tasks), which then retries elsewhere.
    """
    return {
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__CELERY__BROKER_URL": broker_url,
        "AIRFLOW__CELERY__RESULT_BACKEND": sqlalchemy_url(result_backend_dsn, "db+postgresql+psycopg"),
        **CELERY_TUNING,
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": str(heartbeat_timeout),
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "2",
    }


# The stack's users: name -> (SimpleAuthManager role, password). Local test stacks only.
USERS = {"admin": ("admin", "local-stack-admin"), "viewer": ("viewer", "local-stack-viewer")}


def stack_env(home: Path, *, meta_dsn: str, api_port: int, executor: str = "LocalExecutor",
              base: dict[str, str] | None = None, scheduled: bool = False) -> dict[str, str]:
    """Airflow's settings for a stack in ``home`` with its metadata on ``meta_dsn`` (a libpq
    Postgres conninfo). Unless ``scheduled``, the scheduler creates no run of its own (neither
    the 5-minute schedule's nor the updates listener's): runs are made by whoever uses the stack."""
    source = os.environ if base is None else base
    return {
        **{k: v for k, v in source.items() if not k.startswith(("AIRFLOW", "PYTEST"))},
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": executor,
        **TUNING,
        **LOCAL_EXECUTOR_TUNING,
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": sqlalchemy_url(meta_dsn),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
        "AIRFLOW__API_AUTH__JWT_SECRET": "local-stack-secret-not-for-production",
        # Runs only when asked for (REST, backfill, clear): a cron run every 5 minutes would
        # queue ahead of them and hold Qdrant's local-mode lock while a reader wants it.
        SCHEDULED: str(scheduled),
        # Real sign-in (the albums view is tested in a browser): an admin and a viewer, with the
        # passwords of ``USERS`` written into the home by ``boot``.
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": ",".join(f"{name}:{role}" for name, (role, _) in USERS.items()),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
    }


class AirflowStack:
    """Airflow's processes for one ``AIRFLOW_HOME``, each in its own process group."""

    def __init__(self, home: Path, env: dict[str, str], api_port: int, meta_dsn: str):
        self.home, self.env, self.api_port, self.meta_dsn = Path(home), env, api_port, meta_dsn
        self.processes: dict[str, subprocess.Popen] = {}
        self.api = f"http://127.0.0.1:{api_port}"
        self.token: str | None = None

    # -- processes -------------------------------------------------------------------------

    def cli(self, *args: str, timeout: int = 180, env: dict[str, str] | None = None) -> str:
        done = subprocess.run([AIRFLOW, *args], env=env or self.env, capture_output=True, text=True,
                              timeout=timeout)
        if done.returncode != 0:
            raise RuntimeError(f"airflow {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
        return done.stdout

    def start(self, name: str, *args: str, env: dict[str, str] | None = None) -> None:
        log = open(self.home / f"{name}.log", "ab")  # noqa: SIM115 - closed with the process
        self.processes[name] = subprocess.Popen([AIRFLOW, *args], env=env or self.env, stdout=log, stderr=log,
                                                start_new_session=True)

    def stop(self, name: str, sig: int = signal.SIGTERM) -> None:
        process = self.processes.pop(name)
        os.killpg(process.pid, sig)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def stop_all(self) -> None:
        """SIGTERM to every process group at once, then wait (30 s in all) and SIGKILL what is left."""
        for process in self.processes.values():
            try:
                os.killpg(process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 30
        for process in self.processes.values():
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        self.processes.clear()

    def schedule(self, on: bool) -> None:
        """Restart the scheduler with its own runs (the schedule's and the assets') on or off."""
        self.env = {**self.env, SCHEDULED: str(on)}
        self.stop("scheduler")
        self.start("scheduler", "scheduler")

    def start_worker(self, name: str, queues: list[str], concurrency: int = 1) -> None:
        """A Celery worker serving ``queues``, known as ``name`` in task instances; returns once ready."""
        # The worker imports its hostname callable from this checkout's devtools package.
        python_path = os.pathsep.join(filter(None, (str(REPO), self.env.get("PYTHONPATH"))))
        env = {**self.env, WORKER_NAME_ENV: name, "PYTHONPATH": python_path,
               "AIRFLOW__CORE__HOSTNAME_CALLABLE": f"{__name__}.worker_name",
               "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port())}
        self.start(name, "celery", "worker", "--queues", ",".join(queues), "--concurrency", str(concurrency),
                   "--celery-hostname", f"{name}@%h", "--without-mingle", "--without-gossip", env=env)
        log = self.home / f"{name}.log"
        self.wait_for(f"Celery worker {name}", lambda: b" ready." in log.read_bytes(), timeout=120, every=0.5)

    def boot(self, pools: dict[str, int], *, triggerer: bool = True, dag_ids: tuple[str, ...] = (DAG_ID,)) -> None:
        """Migrate the metadata DB, create the pools, start the services, unpause the DAGs."""
        self.home.mkdir(parents=True, exist_ok=True)
        (self.home / "passwords.json").write_text(json.dumps({name: pw for name, (_, pw) in USERS.items()}))
        self.cli("db", "migrate", timeout=300)
        for name, slots in pools.items():
            self.cli("pools", "set", name, str(slots), f"{name} (local stack)")
        self.start("api-server", "api-server", "--port", str(self.api_port))
        self.start("scheduler", "scheduler")
        self.start("dag-processor", "dag-processor")
        if triggerer:
            self.start("triggerer", "triggerer")
        self.wait_for("the api-server", lambda: httpx.get(f"{self.api}/api/v2/monitor/health").status_code == 200)
        self.token = self.wait_for("a token", lambda: self.sign_in("admin"))
        for dag_id in dag_ids:
            path = f"/api/v2/dags/{dag_id}"
            self.wait_for(f"{dag_id} to be parsed", lambda p=path: self.request("GET", p).status_code == 200)
            response = self.request("PATCH", path, json={"is_paused": False})
            if response.status_code != 200:
                raise RuntimeError(f"could not unpause {dag_id}: {response.text}")

    # -- REST ------------------------------------------------------------------------------

    def sign_in(self, name: str) -> str:
        """A JWT for one of ``USERS`` from the api-server's ``POST /auth/token``."""
        response = httpx.post(f"{self.api}/auth/token", json={"username": name, "password": USERS[name][1]},
                              timeout=30)
        response.raise_for_status()
        return response.json()["access_token"]

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        return httpx.request(method, f"{self.api}{path}", headers=headers, timeout=30, **kwargs)

    def wait_for(self, what: str, check: Callable[[], Any], timeout: float = 180, every: float = 1.0) -> Any:
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
        raise TimeoutError(f"timed out waiting for {what}\n{logs}")

    def run(self, run_id: str, dag_id: str = DAG_ID) -> dict:
        return self.request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}").json()

    def run_state(self, run_id: str, dag_id: str = DAG_ID) -> str:
        return self.run(run_id, dag_id)["state"]

    def wait_for_run(self, run_id: str, timeout: float = 600, dag_id: str = DAG_ID) -> str:
        return self.wait_for(f"run {run_id} to finish",
                             lambda: (s := self.run_state(run_id, dag_id)) in ("success", "failed") and s,
                             timeout=timeout, every=1)

    def trigger(self, dag_id: str = DAG_ID, *, logical_date: datetime | None = None, conf: dict | None = None) -> str:
        """A manual run (with ``logical_date``, its data interval is the schedule's window ending there)."""
        body = {"logical_date": logical_date.isoformat() if logical_date else None, "conf": conf or {}}
        response = self.request("POST", f"/api/v2/dags/{dag_id}/dagRuns", json=body)
        if response.status_code != 200:
            raise RuntimeError(f"could not trigger {dag_id}: {response.text}")
        return response.json()["dag_run_id"]

    def clear(self, run_id: str, **body: Any) -> list[tuple[str, int]]:
        """Clear task instances of a finished run through the REST API; returns the (task, map index) cleared."""
        response = self.request("POST", f"{DAG}/clearTaskInstances", json={
            "dry_run": False, "dag_run_id": run_id, "only_failed": False, "reset_dag_runs": True, **body})
        if response.status_code != 200:
            raise RuntimeError(f"clear failed: {response.text}")
        return sorted((ti["task_id"], ti["map_index"]) for ti in response.json()["task_instances"])

    def active_runs(self) -> list[dict]:
        return self.request("GET", f"{DAG}/dagRuns", params=[("state", "queued"), ("state", "running")]
                            ).json()["dag_runs"]

    # -- metadata --------------------------------------------------------------------------

    def task_instances(self, run_id: str, dag_id: str = DAG_ID) -> dict[tuple[str, int], dict]:
        """(task id, map index) -> the task instance's row in the metadata DB."""
        with psycopg.connect(self.meta_dsn, row_factory=dict_row) as meta:
            return {(r["task_id"], r["map_index"]): r for r in meta.execute(
                "SELECT * FROM task_instance WHERE dag_id = %s AND run_id = %s", (dag_id, run_id))}


class StatsdSink:
    """A UDP socket on loopback that takes what Airflow's StatsD client sends: every metric name
    seen (``names``) and the sum of every counter (``counters``)."""

    def __init__(self) -> None:
        import socket

        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.5)
        self.port = self.sock.getsockname()[1]
        self.names: set[str] = set()
        self.counters: dict[str, float] = {}
        self._stop = False
        threading.Thread(target=self._receive, daemon=True).start()

    def env(self, prefix: str = "airflow") -> dict[str, str]:
        """Airflow's settings that send its metrics (and the pipeline's) here."""
        return {"AIRFLOW__METRICS__STATSD_ON": "True", "AIRFLOW__METRICS__STATSD_HOST": "127.0.0.1",
                "AIRFLOW__METRICS__STATSD_PORT": str(self.port), "AIRFLOW__METRICS__STATSD_PREFIX": prefix}

    def _receive(self) -> None:
        while not self._stop:
            try:
                data = self.sock.recv(65535)
            except OSError:
                continue
            for line in data.decode(errors="replace").splitlines():
                name, _, rest = line.partition(":")
                self.names.add(name)
                value, _, kind = rest.partition("|")
                if kind.startswith("c"):
                    try:
                        self.counters[name] = self.counters.get(name, 0) + float(value)
                    except ValueError:
                        pass

    def close(self) -> None:
        self._stop = True
        self.sock.close()


class TaskMemory:
    """Samples the memory of every task process (titled ``airflow worker -- <ti id>``) every
    ``every`` seconds: ``peaks`` maps a task instance id to its largest RSS in bytes, ``private``
    to its largest USS (the pages it does not share with the worker it was forked from)."""

    def __init__(self, every: float = 0.1):
        self.every = every
        self.peaks: dict[str, int] = {}
        self.private: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> TaskMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        import psutil

        while not self._stop.is_set():
            for process in psutil.process_iter(["cmdline", "memory_info"]):
                cmdline = process.info.get("cmdline") or []
                title = " ".join(cmdline)
                ti_id = title[len(TASK_PROCESS_TITLE):].strip()
                # (executor processes are titled "airflow worker -- LocalExecutor: ..." too)
                if not (title.startswith(TASK_PROCESS_TITLE) and _UUID.fullmatch(ti_id)):
                    continue
                try:
                    uss = process.memory_full_info().uss
                except psutil.Error:  # the task ended meanwhile
                    continue
                self.peaks[ti_id] = max(self.peaks.get(ti_id, 0), process.info["memory_info"].rss)
                self.private[ti_id] = max(self.private.get(ti_id, 0), uss)
            self._stop.wait(self.every)
