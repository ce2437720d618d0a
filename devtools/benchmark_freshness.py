"""The freshness benchmark: how soon a posted album is searchable, with the updates listener.

``python -m devtools benchmark --freshness [CHANNELS/MINUTES]`` (default 50/30). On the
embedded services of ``benchmark.Services``:

1. a live archive (``sample.build_live_archive``): ``CHANNELS`` channels posting albums of 2-4
   tiny photos (items 1-3 s apart, some followed by a text post) at random moments of
   ``MINUTES`` minutes that start three minutes from now; the archive transport posts each
   message when its date comes, to the pulling tasks and to the listener alike;
2. a first run (the plain library loop) pulls each channel's earlier post: the marks are set;
3. a real stack (scheduler, dag-processor, triggerer, api-server; LocalExecutor, 1-s heartbeats)
   with ``telegram_updates`` defined: the listener runs in the triggerer, ``telegram_albums``
   on its events and on its 5-minute schedule; StatsD on a local socket;
4. the listener is killed (the triggerer SIGKILLed) for a sixth of the minutes in the middle,
   then started again;
5. when every album is indexed (or ``MINUTES`` + 12 min have passed) and the schedule's first
   run after the last post has run (the span both designs are counted over), per album the latency from
   its last item's date to searchable (assembled in Postgres, indexed in Qdrant: ``indexed_at``),
   p50, p95 and max for the albums posted while the listener ran and for those posted while it
   was down; every album stored once; Telegram's requests per hour from the pipeline's StatsD
   counter (tasks and listener alike), by type; the runs by how they started, and the minimal
   runs' (one channel, one album) wall time and what its tasks and the gaps between them cost;
6. the cron-only design on the same traffic, for the budget: the plain library loop replayed at
   every 5-minute tick of the same span (the archive as of each tick), its requests counted by
   the client, as a scheduled run makes them. The span ends after the first tick past the last
   post in both designs, so each has pulled every album (a span ending earlier would leave the
   cron-only design's last albums unpulled, and uncounted).
"""

from __future__ import annotations

import json
import signal
import statistics
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from devtools.airflow_stack import StatsdSink
from devtools.benchmark import Services, _prepare, _settings, ingest_with_media, plain_loop, write_benchmarks
from devtools.benchmark_history import _requests
from include.album.source.client import request_kind
from include.album.stores import db

DOWN_SHARE = 1 / 6  # the listener is down 5 of 30 minutes
LEAD = timedelta(minutes=3)  # the stack boots and the listener takes its lease before the first post
SETTLE = timedelta(seconds=15)  # after a tick, its scheduled run is queued
TARGETS = {"p50_s": 30, "p95_s": 60, "minimal_run_s": 20}


@dataclass
class FreshnessBench:
    channels: int
    minutes: float
    albums: int = 0
    down_minutes: float = 0.0
    heard: dict[str, float] = field(default_factory=dict)  # p50, p95, max (s) of albums posted while it listened
    heard_albums: int = 0
    down: dict[str, float] = field(default_factory=dict)  # the same for the albums posted while it was down
    down_albums: int = 0
    stored: int = 0  # albums stored and indexed, once each
    duplicates: int = 0
    runs: dict[str, int] = field(default_factory=dict)  # telegram_albums runs by type
    minimal_runs: int = 0  # asset-triggered runs that processed exactly one album
    minimal_run_s: dict[str, float] = field(default_factory=dict)  # p50, max wall
    minimal_tasks_s: float = 0.0  # of that: the tasks' own durations (median run)
    minimal_gaps_s: float = 0.0  # of that: the time between them (scheduling, process start)
    minimal_profile: list[list] = field(default_factory=list)  # the median run: [task, waited s, ran s], in order
    listener_requests_per_hour: dict[str, float] = field(default_factory=dict)
    cron_only_requests_per_hour: dict[str, float] = field(default_factory=dict)
    total_s: float = 0.0


def _percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    ordered = sorted(values)
    return {"p50": statistics.median(ordered), "p95": ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))],
            "max": ordered[-1]}


def _per_hour(requests: Counter[str], seconds: float) -> dict[str, float]:
    return {kind: round(count * 3600 / seconds, 1) for kind, count in sorted(requests.items())}


def measure_freshness(services: Services, channels: int, minutes: float, work: Path) -> FreshnessBench:
    from devtools.sample import build_live_archive
    from include.album.stores.media import MediaStore

    bench = FreshnessBench(channels=channels, minutes=minutes, down_minutes=minutes * DOWN_SHARE)
    archive = work / "freshness_live"
    start = datetime.now(UTC) + LEAD
    albums = round(channels * minutes / 15)  # an album per channel every ~15 minutes
    live = build_live_archive(archive, channels=channels, start=start, minutes=minutes, albums=albums)
    bench.albums = len(live["live"])
    target = services.fresh(live)
    with db.connect(target["pg"].dsn) as conn:
        conn.autocommit = True
        plain_loop(conn, MediaStore(services.s3_client(), target["bucket"]), target, archive, live,
                   services.graph_port)  # the earlier posts: marks set, the vision model loaded once

    statsd = StatsdSink()
    listening = {"AIRFLOW_CONN_TELEGRAM_UPDATES": json.dumps({"conn_type": "generic",
                                                              "extra": {"archive": str(archive)}})}
    stack = services.stack(target, archive, extra_env=statsd.env() | listening, triggerer=True, scheduled=True)
    began = time.monotonic()
    end = start + timedelta(minutes=minutes)
    down_from = start + timedelta(minutes=(minutes - bench.down_minutes) / 2)
    down_until = down_from + timedelta(minutes=bench.down_minutes)
    if datetime.now(UTC) > start:
        print(f"  the stack was up {(datetime.now(UTC) - start).total_seconds():.0f} s after the first post could "
              "come: the first albums may wait for the schedule", flush=True)
    try:
        _sleep_until(start)
        before = _requests(statsd)  # (the stack's first run, at boot, is the same in both designs)
        _sleep_until(down_from)
        stack.stop("triggerer", signal.SIGKILL)
        print(f"  listener down {down_from:%H:%M:%S}..{down_until:%H:%M:%S}", flush=True)
        _sleep_until(down_until)
        stack.start("triggerer", "triggerer")
        _sleep_until(end)
        stack.wait_for("every album indexed", lambda: _all_indexed(target, live), timeout=12 * 60, every=5)
        _sleep_until(_tick_after(end) + SETTLE)  # that tick's scheduled run is queued: both designs' span
        stack.wait_for("no active run", lambda: not stack.active_runs(), timeout=600, every=2)
        elapsed = (datetime.now(UTC) - start).total_seconds()
        bench.listener_requests_per_hour = _per_hour(_requests(statsd) - before, elapsed)
        _latencies(bench, target, live, down_from, down_until)
        _runs(bench, stack)
    finally:
        stack.stop_all()
        statsd.close()
    bench.cron_only_requests_per_hour = _cron_only(services, live, archive, start, end, elapsed)
    bench.total_s = time.monotonic() - began
    return bench


def _tick_after(moment: datetime) -> datetime:
    """The schedule's first 5-minute tick at or after ``moment``."""
    tick = moment.replace(second=0, microsecond=0) - timedelta(minutes=moment.minute % 5)
    return tick if tick >= moment else tick + timedelta(minutes=5)


def _sleep_until(moment: datetime) -> None:
    time.sleep(max(0.0, (moment - datetime.now(UTC)).total_seconds()))


def _albums(target: dict, live: dict) -> list[dict]:
    with db.connect(target["pg"].dsn) as conn:
        return conn.execute(
            "SELECT grouped_id, items_count, status, indexed_at FROM media_groups WHERE grouped_id = ANY(%s)",
            ([a["grouped_id"] for a in live["live"]],)).fetchall()


def _all_indexed(target: dict, live: dict) -> bool:
    rows = _albums(target, live)
    sizes = {a["grouped_id"]: len(a["message_ids"]) for a in live["live"]}
    done = {r["grouped_id"] for r in rows if r["status"] == "assembled" and r["indexed_at"]
            and r["items_count"] == sizes[r["grouped_id"]]}
    return len(done) == len(sizes)


def _latencies(bench: FreshnessBench, target: dict, live: dict, down_from: datetime, down_until: datetime) -> None:
    stored = _albums(target, live)
    rows = {r["grouped_id"]: r for r in stored}
    bench.stored = len(rows)
    bench.duplicates = len(stored) - len(rows)
    heard, down = [], []
    for album in live["live"]:
        last = datetime.fromisoformat(album["last_item_at"])
        lag = (rows[album["grouped_id"]]["indexed_at"] - last).total_seconds()
        (down if down_from <= last < down_until else heard).append(lag)
    bench.heard, bench.heard_albums = _percentiles(heard), len(heard)
    bench.down, bench.down_albums = _percentiles(down), len(down)


def _runs(bench: FreshnessBench, stack: Any) -> None:
    """The runs by how they started; the minimal ones' wall time, split into the tasks' own time
    and the gaps between them (what the scheduler and the executor spend)."""
    runs = stack.request("GET", "/api/v2/dags/telegram_albums/dagRuns", params={"limit": 1000}).json()["dag_runs"]
    bench.runs = dict(Counter(r["run_type"] for r in runs))
    minimal = []
    for run in runs:
        if run["run_type"] != "asset_triggered" or run["state"] != "success":
            continue
        instances = stack.task_instances(run["dag_run_id"])
        if sum(1 for (task, _), ti in instances.items() if task == "album.index" and ti["state"] == "success") != 1:
            continue
        queued = datetime.fromisoformat(run["queued_at"])
        wall = (datetime.fromisoformat(run["end_date"]) - queued).total_seconds()
        ran = [ti for ti in instances.values() if ti["start_date"] and ti["end_date"]]
        minimal.append((wall, _busy_seconds(ran), _profile(ran, queued)))
    bench.minimal_runs = len(minimal)
    if minimal:
        walls = sorted(minimal, key=lambda m: m[0])
        bench.minimal_run_s = {"p50": statistics.median(w for w, _, _ in walls), "max": walls[-1][0]}
        wall, busy, bench.minimal_profile = walls[len(walls) // 2]
        bench.minimal_tasks_s, bench.minimal_gaps_s = busy, wall - busy


def _profile(instances: list[dict], queued: datetime) -> list[list]:
    """Per task instance, in the order they started: how long it waited after the previous one
    ended (the run's queueing, for the first) and how long it ran."""
    rows, last_end = [], queued
    for ti in sorted(instances, key=lambda t: t["start_date"]):
        waited = (ti["start_date"] - last_end).total_seconds()
        rows.append([ti["task_id"], round(waited, 2), round((ti["end_date"] - ti["start_date"]).total_seconds(), 2)])
        last_end = max(last_end, ti["end_date"])
    return rows


def _busy_seconds(instances: list[dict]) -> float:
    """Time when at least one task instance of the run was running (overlaps counted once)."""
    spans = sorted((ti["start_date"], ti["end_date"]) for ti in instances)
    busy, current_start, current_end = 0.0, None, None
    for start, end in spans:
        if current_end is None or start > current_end:
            if current_end is not None:
                busy += (current_end - current_start).total_seconds()
            current_start, current_end = start, end
        else:
            current_end = max(current_end, end)
    if current_end is not None:
        busy += (current_end - current_start).total_seconds()
    return busy


def _cron_only(services: Services, live: dict, archive: Path, start: datetime, end: datetime,
               seconds: float) -> dict[str, float]:
    """The requests the cron-only design makes on the same traffic: a scheduled run's change
    check and pulls at every 5-minute tick from ``start`` until ``seconds`` later."""
    from include.album.stores.media import MediaStore

    target = services.fresh(live)
    requests: Counter[str] = Counter()
    first_tick = _tick_after(start + timedelta(microseconds=1))
    with db.connect(target["pg"].dsn) as conn:
        conn.autocommit = True
        store = MediaStore(services.s3_client(), target["bucket"])
        settings = _settings(target)
        ingest_with_media(conn, store, archive, live, settings, as_of=start)  # the marks, as at the first post
        tick = first_tick
        while tick <= start + timedelta(seconds=seconds):
            requests.update(ingest_with_media(conn, store, archive, live, settings, as_of=tick))
            tick += timedelta(minutes=5)
    return _per_hour(Counter({request_kind(name): n for name, n in requests.items()}), seconds)


def run_freshness(spec: str, out: Path, state_dir: Path | None = None) -> FreshnessBench:
    channels, minutes = (float(n) for n in spec.split("/"))
    state, services = _prepare(state_dir)
    try:
        print(f"• freshness: {int(channels)} channels posting over {minutes:g} minutes, the listener down "
              f"{minutes * DOWN_SHARE:g} of them", flush=True)
        bench = measure_freshness(services, int(channels), minutes, state)
        print(json.dumps(asdict(bench)), flush=True)
        write_benchmarks(out, freshness=(bench, f"python -m devtools benchmark --freshness {spec}"))
    finally:
        services.stop()
    return bench


def freshness_section(data: dict) -> list[str]:
    """The freshness tables and targets, from the report's JSON."""
    if not data.get("freshness"):
        return []
    b = FreshnessBench(**{k: v for k, v in data["freshness"].items() if k in FreshnessBench.__dataclass_fields__})

    def figures(values: dict[str, float]) -> str:
        return " / ".join(f"{values[k]:.1f}" for k in ("p50", "p95", "max")) if values else "–"

    def rate(requests: dict[str, float]) -> str:
        return ", ".join(f"{k} {v:g}" for k, v in requests.items()) or "none"

    listener_total = sum(b.listener_requests_per_hour.values())
    cron_total = sum(b.cron_only_requests_per_hour.values())
    minimal = b.minimal_run_s.get("p50", 0.0)
    lines = ["", "## Freshness: post to searchable, with the updates listener", "",
             f"Command: `{data['freshness_command']}`. {b.channels} channels post {b.albums} albums of 2–4 tiny photos",
             f"(items 1–3 s apart) at random moments of {b.minutes:g} minutes; the listener (a trigger in the",
             "triggerer, session `telegram_updates`) starts `telegram_albums` for what it hears, the 5-minute schedule",
             f"runs beside it; the triggerer is SIGKILLed for {b.down_minutes:g} minutes in the middle. Latency:",
             "from an album's last item's date to `indexed_at` (assembled in Postgres, its point in Qdrant).", "",
             "| albums posted | albums | latency p50 / p95 / max s |", "|---|---:|---|",
             f"| while the listener ran | {b.heard_albums} | {figures(b.heard)} |",
             f"| while it was down (the schedule's runs) | {b.down_albums} | {figures(b.down)} |", "",
             f"Stored and indexed: {b.stored} of {b.albums} albums, {b.duplicates} duplicated. Runs: "
             + ", ".join(f"{k} {v}" for k, v in sorted(b.runs.items())) + ".", "",
             f"Minimal runs (asset-triggered, one album): {b.minimal_runs}, wall (queued → end) p50 {minimal:.1f} s, "
             f"max {b.minimal_run_s.get('max', 0.0):.1f} s; of the median run {b.minimal_tasks_s:.1f} s in tasks and "
             f"{b.minimal_gaps_s:.1f} s between them (scheduling, process start); per task instance, in the order",
             "they started, the wait after the one before it ended (0: it ran beside it) and its own time:", "",
             "| task instance | waited s | ran s |", "|---|---:|---:|",
             *(f"| {task} | {max(waited, 0):.2f} | {ran:.2f} |" for task, waited, ran in b.minimal_profile), "",
             "Telegram requests per hour (the pipeline's `telegram_requests` counter: tasks and listener), both",
             "designs counted over the same span: from the first post until the schedule's first run after the",
             "last one (every album pulled in both):", "",
             "| design | requests per hour | all |", "|---|---|---:|",
             f"| listener + 5-minute schedule | {rate(b.listener_requests_per_hour)} | {listener_total:.0f} |",
             f"| 5-minute schedule only (replayed) | {rate(b.cron_only_requests_per_hour)} | {cron_total:.0f} |", "",
             "| target | figure | status |", "|---|---|---|"]
    checks = [("post → searchable p50 ≤ 30 s", b.heard.get("p50"), TARGETS["p50_s"]),
              ("post → searchable p95 ≤ 60 s", b.heard.get("p95"), TARGETS["p95_s"]),
              ("minimal run ≤ 20 s", minimal or None, TARGETS["minimal_run_s"])]
    for name, figure, limit in checks:
        ok = figure is not None and figure <= limit
        lines.append(f"| {name} | {figure or 0:.1f} s | {'met' if ok else 'missed'} |")
    lines.append(f"| requests per hour ≤ the schedule only's | {listener_total:.0f} vs {cron_total:.0f} | "
                 f"{'met' if listener_total <= cron_total else 'missed'} |")
    lines.append(f"| nothing lost or duplicated with the listener down | {b.stored}/{b.albums}, "
                 f"{b.duplicates} duplicated | {'met' if b.stored == b.albums and not b.duplicates else 'missed'} |")
    return lines
