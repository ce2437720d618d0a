"""The steady-state benchmark: one 5-minute window of realistic traffic over many channels.

``python -m devtools benchmark --steady A,B,C`` (README). The regime that decides whether
the pipeline keeps up in production is many channels with a little traffic each, every five
minutes. Per window (``WINDOWS``: channels, of which changed), on the embedded services of
``benchmark.Services``:

1. the archive (``sample.build_steady_archive``) and a vision cache warmed by a full pass;
2. on a fresh target, a first run (the plain loop as of ``STEADY_MARK``) sets every channel's
   mark, then the window through the plain library loop, timed, with Telegram's requests by type;
3. on another fresh target, the same first run, then the window through the DAG under a real
   LocalExecutor stack (1-s heartbeats): run wall, task instances, mean queued→running, the
   ingest phase and the album phase, Telegram's requests by type (the pipeline's StatsD counter
   ``telegram_requests``), and peak RSS per task; a small floor run first warms the stack, as a
   stack that has run for a while is;
4. on the same stack, Airflow's own floor: ``floor_dag.py``, a DAG of the same shape and task
   instance count whose tasks do nothing.

The results go into ``docs/benchmarks.md`` and ``.json`` beside the other tables, with the
targets of ``TARGETS`` judged met or missed.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from devtools.airflow_stack import StatsdSink, TaskMemory
from devtools.benchmark import (
    FLOOR_DAG_ID,
    Services,
    _prepare,
    _timed,
    copy_vision_cache,
    finished_run,
    plain_loop,
    task_memory,
    write_benchmarks,
)
from include.album.stores import db

# name -> (channels, changed channels)
WINDOWS = {"A": (200, 200), "B": (1000, 200), "C": (1000, 1000)}
TARGETS = {
    "A_wall_s": 60,              # 200 channels, all changed
    "B_to_A": 1.25,              # 1,000 channels, 200 changed: wall against A's
    "C_wall_s": 180,             # 1,000 channels, all changed
    "overhead_to_floor": 2.0,    # (DAG wall - plain loop) / floor wall, at 200 channels
}
# Telegram requests that are not file downloads: at most 2 per changed channel + 1 per 100 channels.
# Requests are named as the metric labels them (``telegram.request_kind``).
DOWNLOADS = "get_file"
REQUEST_METRIC = "airflow.telegram_albums.telegram_requests."


@dataclass
class SteadyResult:
    window: str
    channels: int
    changed: int
    messages: int = 0                      # messages posted in the window
    albums: int = 0                        # albums posted in the window
    loop_s: float = 0.0
    loop_requests: dict[str, int] = field(default_factory=dict)
    dag_s: float = 0.0
    dag_state: str = ""
    dag_tasks: int = 0
    ingest_units: int = 0
    album_units: int = 0
    queue_latency_s: float = 0.0
    ingest_phase_s: float = 0.0
    album_phase_s: float = 0.0
    dag_requests: dict[str, int] = field(default_factory=dict)
    floor_s: float = 0.0
    floor_state: str = ""
    floor_tasks: int = 0
    heaviest_task: str = ""
    heaviest_task_rss_mb: float = 0.0
    task_rss_mb: dict[str, float] = field(default_factory=dict)
    task_uss_mb: dict[str, float] = field(default_factory=dict)

    @property
    def overhead_s(self) -> float:
        """What Airflow adds to the same work: DAG wall - plain loop."""
        return self.dag_s - self.loop_s

    @property
    def requests_budget(self) -> int:
        return 2 * self.changed + self.channels // 100


def non_download_requests(requests: dict[str, int]) -> int:
    return sum(n for name, n in requests.items() if name != DOWNLOADS)


def by_kind(requests: dict[str, int]) -> dict[str, int]:
    """Telethon request type names as the metric's labels (``GetFileRequest`` -> ``get_file``)."""
    from include.album.source.client import request_kind

    return dict(sorted((request_kind(name), count) for name, count in requests.items()))


def window_counts(expected: dict) -> tuple[int, int]:
    """(messages, albums) posted in the window, i.e. after the mark."""
    from devtools.sample import STEADY_MARK

    messages = sum(1 for p in expected["posts"] if datetime.fromisoformat(p["posted_at"]) > STEADY_MARK)
    ids = {(p["channel_id"], p["message_id"]) for p in expected["posts"]
           if datetime.fromisoformat(p["posted_at"]) > STEADY_MARK}
    albums = sum(1 for a in expected["albums"] if (a["channel_id"], a["message_ids"][0]) in ids)
    return messages, albums


def _phase(instances: list[dict], tasks: set[str] | None = None, prefix: str | None = None) -> float:
    chosen = [ti for ti in instances if (tasks and ti["task_id"] in tasks) or
              (prefix and ti["task_id"].startswith(prefix))]
    if not chosen:
        return 0.0
    return (max(ti["end_date"] for ti in chosen) - min(ti["start_date"] for ti in chosen)).total_seconds()


def first_run(services: Services, target: dict, archive: Path, expected: dict) -> None:
    """What the runs before the window left: every channel pulled up to the mark, its albums done."""
    from devtools.sample import STEADY_MARK
    from include.album.stores.media import MediaStore

    with db.connect(target["pg"].dsn) as conn:
        conn.autocommit = True
        plain_loop(conn, MediaStore(services.s3_client(), target["bucket"]), target, archive, expected,
                   services.graph_port, as_of=STEADY_MARK)


def measure_window(services: Services, name: str, channels: int, changed: int, work: Path) -> SteadyResult:
    from devtools.sample import STEADY_MARK, STEADY_WINDOW, build_steady_archive
    from include.album.stores.media import MediaStore

    result = SteadyResult(window=name, channels=channels, changed=changed)
    archive = work / f"steady_{channels}_{changed}"
    shutil.rmtree(archive, ignore_errors=True)
    expected = build_steady_archive(archive, channels, changed)
    result.messages, result.albums = window_counts(expected)
    window_end = STEADY_MARK + STEADY_WINDOW

    warm = services.fresh(expected)  # a full pass fills the vision cache the measured runs copy
    with db.connect(warm["pg"].dsn) as conn:
        conn.autocommit = True
        plain_loop(conn, MediaStore(services.s3_client(), warm["bucket"]), warm, archive, expected,
                   services.graph_port)

    loop = services.fresh(expected)
    copy_vision_cache(warm["pg"], loop["pg"])
    first_run(services, loop, archive, expected)
    with db.connect(loop["pg"].dsn) as conn:
        conn.autocommit = True
        store = MediaStore(services.s3_client(), loop["bucket"])
        requests, result.loop_s = _timed(lambda: plain_loop(conn, store, loop, archive, expected,
                                                            services.graph_port, as_of=window_end))
    result.loop_requests = by_kind(requests)

    target = services.fresh(expected)
    copy_vision_cache(warm["pg"], target["pg"])
    first_run(services, target, archive, expected)
    statsd = StatsdSink()
    stack = services.stack(target, archive, replay=True, with_floor=True, extra_env=statsd.env())
    try:
        # A stack runs for months: warm its worker processes first (its first task pays ~3 s of start-up).
        stack.wait_for_run(stack.trigger(FLOOR_DAG_ID, conf={"ingest_units": 1, "album_units": 1}),
                           timeout=600, dag_id=FLOOR_DAG_ID)
        with TaskMemory() as memory:
            run_id = stack.trigger(logical_date=window_end)
            result.dag_state = stack.wait_for_run(run_id, timeout=3600)
        result.dag_s, instances = finished_run(stack, run_id)
        result.dag_tasks = len(instances)
        result.ingest_units = sum(1 for ti in instances if ti["task_id"] == "ingest")
        result.album_units = sum(1 for ti in instances if ti["task_id"] == "album.vision")
        latencies = [(ti["start_date"] - ti["queued_dttm"]).total_seconds() for ti in instances if ti["queued_dttm"]]
        result.queue_latency_s = sum(latencies) / len(latencies) if latencies else 0.0
        result.ingest_phase_s = _phase(instances, {"changed_channels", "ingest"})
        result.album_phase_s = _phase(instances, prefix="album.")
        result.dag_requests = {name[len(REQUEST_METRIC):]: int(n) for name, n in sorted(statsd.counters.items())
                               if name.startswith(REQUEST_METRIC)}
        result.task_rss_mb, result.task_uss_mb = task_memory(memory, instances)
        if result.task_rss_mb:
            result.heaviest_task, result.heaviest_task_rss_mb = max(result.task_rss_mb.items(), key=lambda i: i[1])

        floor_id = stack.trigger(FLOOR_DAG_ID, conf={"ingest_units": result.ingest_units,
                                                     "album_units": result.album_units})
        result.floor_state = stack.wait_for_run(floor_id, timeout=3600, dag_id=FLOOR_DAG_ID)
        result.floor_s, floor_instances = finished_run(stack, floor_id, FLOOR_DAG_ID)
        result.floor_tasks = len(floor_instances)
    finally:
        stack.stop_all()
        statsd.close()
    with db.connect(target["pg"].dsn) as conn:
        from devtools.sample import differences_from_expectation

        problems = differences_from_expectation(conn, expected)
    if problems:
        raise RuntimeError(f"window {name}: the DAG's stores differ from the archive: {problems[:5]}")
    return result


def parse_windows(spec: str) -> list[tuple[str, int, int]]:
    """``A,B,C`` (the named windows) or ``N/M`` (N channels, M of them changed), comma-separated."""
    windows = []
    for part in spec.split(","):
        part = part.strip()
        if part in WINDOWS:
            windows.append((part, *WINDOWS[part]))
            continue
        try:
            channels, changed = (int(n) for n in part.split("/"))
        except ValueError:
            raise ValueError(f"--steady {part!r}: use one of {', '.join(WINDOWS)} or CHANNELS/CHANGED") from None
        if not 0 < changed <= channels:
            raise ValueError(f"--steady {part!r}: the changed channels must be 1..{channels}")
        windows.append((part, channels, changed))
    return windows


def run_steady(spec: str, out: Path, state_dir: Path | None = None) -> list[SteadyResult]:
    windows = parse_windows(spec)
    state, services = _prepare(state_dir)
    results = []
    try:
        for name, channels, changed in windows:
            print(f"• steady-state window {name}: {channels} channels, {changed} changed", flush=True)
            results.append(measure_window(services, name, channels, changed, state))
            print(json.dumps(asdict(results[-1])), flush=True)
            write_benchmarks(out, steady=(results, f"python -m devtools benchmark --steady {spec}"))
    finally:
        services.stop()
    return results


def steady_section(data: dict) -> list[str]:
    """The steady-state tables and targets, from the report's JSON."""
    if not data.get("steady"):
        return []
    results = [SteadyResult(**{k: v for k, v in r.items() if k in SteadyResult.__dataclass_fields__})
               for r in data["steady"]]
    lines = ["", "## Steady state: one 5-minute window over many channels", "",
             f"Command: `{data['steady_command']}`. Each window after a first run set every channel's mark,",
             "vision cache warm, tiny images; the DAG under a real LocalExecutor stack (the settings above); the",
             "floor is a DAG of the same shape and task instances whose tasks do nothing, on the same stack.",
             "", "| window | channels | changed | messages | albums | plain loop s | DAG s | task instances "
             "(ingest units, album units) | queued→running s | ingest phase s | album phase s | floor s | "
             "overhead (DAG − loop) / floor | heaviest task (RSS MB) |",
             "|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---|"]
    for r in results:
        ratio = r.overhead_s / r.floor_s if r.floor_s else 0.0
        lines.append(f"| {r.window} | {r.channels} | {r.changed} | {r.messages} | {r.albums} | {r.loop_s:.1f} | "
                     f"{r.dag_s:.1f} ({r.dag_state}) | {r.dag_tasks} ({r.ingest_units}, {r.album_units}) | "
                     f"{r.queue_latency_s:.2f} | {r.ingest_phase_s:.1f} | {r.album_phase_s:.1f} | "
                     f"{r.floor_s:.1f} ({r.floor_tasks}) | {ratio:.2f} | {r.heaviest_task} "
                     f"({r.heaviest_task_rss_mb:.0f}) |")
    lines += ["", "Telegram requests per window, by type (the DAG's from the `telegram_requests` StatsD counter;",
              "the plain loop's from the client), against the budget of 2 per changed channel + 1 per 100 channels",
              "(file downloads apart):", "",
              "| window | DAG requests | plain loop requests | non-download (DAG) | budget |",
              "|---|---|---|---:|---:|"]
    for r in results:
        def shown(requests: dict[str, int]) -> str:
            return ", ".join(f"{k} {v}" for k, v in by_kind(requests).items()) or "not counted"

        lines.append(f"| {r.window} | {shown(r.dag_requests)} | {shown(r.loop_requests)} | "
                     f"{non_download_requests(by_kind(r.dag_requests or r.loop_requests))} | {r.requests_budget} |")
    lines += ["", "| target | figure | status |", "|---|---|---|", *steady_target_rows(results)]
    return lines


def steady_target_rows(results: list[SteadyResult]) -> list[str]:
    by = {(r.channels, r.changed): r for r in results}
    a, b, c = by.get(WINDOWS["A"]), by.get(WINDOWS["B"]), by.get(WINDOWS["C"])

    def row(name: str, result: Any, ok: bool, shown: str) -> str:
        return f"| {name} | {shown if result else 'not measured'} | " \
               f"{'not measured' if not result else 'met' if ok else 'missed'} |"

    def within(result: SteadyResult | None, seconds: float) -> bool:
        return bool(result and result.dag_state == "success" and result.dag_s <= seconds)

    rows = [row(f"A: 200 channels, all changed: wall <= {TARGETS['A_wall_s']} s", a, within(a, TARGETS["A_wall_s"]),
                f"{a.dag_s:.1f} s" if a else "")]
    rows.append(row(f"B: 1,000 channels, 200 changed: wall <= {TARGETS['B_to_A']}x A's", a and b,
                    bool(a and within(b, TARGETS["B_to_A"] * a.dag_s)),
                    f"{b.dag_s:.1f} s = {b.dag_s / a.dag_s:.2f}x" if a and b and a.dag_s else ""))
    if b:
        used = non_download_requests(by_kind(b.dag_requests or b.loop_requests))
        rows.append(row(f"B: Telegram requests other than downloads <= {b.requests_budget}", b,
                        0 < used <= b.requests_budget, f"{used}"))
    rows.append(row(f"C: 1,000 channels, all changed: wall <= {TARGETS['C_wall_s']} s", c,
                    within(c, TARGETS["C_wall_s"]), f"{c.dag_s:.1f} s" if c else ""))
    measured = [r for r in (a, b, c) if r]
    rows.append(row("task instances per run the same in A, B and C", len(measured) == 3,
                    len({r.dag_tasks for r in measured}) == 1, ", ".join(str(r.dag_tasks) for r in measured)))
    if a:
        ratio = a.overhead_s / a.floor_s if a.floor_s else 0.0
        rows.append(row(f"A: Airflow overhead (DAG - loop) <= {TARGETS['overhead_to_floor']:.0f}x the floor DAG's wall",
                        a, 0 < ratio <= TARGETS["overhead_to_floor"] or a.overhead_s <= 0,
                        f"{a.overhead_s:.1f} s vs floor {a.floor_s:.1f} s = {ratio:.2f}x"))
    return rows
