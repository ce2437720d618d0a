"""The history benchmark: a channel's past imported through ``telegram_albums_history``.

``python -m devtools benchmark --history [CHANNELS/DAYS]`` (README). On the embedded services of
``benchmark.Services``, one target and one real LocalExecutor stack with both DAGs:

1. the archive: ``CHANNELS`` channels × ``DAYS`` days of history (15 messages a day each, one
   3-photo album a day, one channel's albums across midnight) and a quiet channel (3 messages
   over the span), beside 70 live channels with two alike 5-minute windows
   (``build_steady_archive``); a first run sets the live channels' marks;
2. the live window W1 through ``telegram_albums``: its wall, quiet;
3. ``airflow backfill create --dag-id telegram_albums_history`` over the span, and while it runs
   the live window W2 (the same traffic as W1): the import's runs, wall and messages/s, its
   Telegram requests by type (the ``telegram_requests`` StatsD counter over the import, minus
   W2's, which equal W1's) against the ideal Σ⌈messages/100⌉, and W2's wall against W1's;
4. the contrast: three runs of ``airflow backfill create --dag-id telegram_albums`` over 15
   minutes of the same channels' past (what importing history cost before), extrapolated to the span;
5. per channel, the same days imported by the library itself (``steps.history``, a fresh client
   a day, as the runs): each channel's requests, the quiet one's included.

Every history message must be stored once and every album assembled and indexed, or it fails.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from devtools.airflow_stack import StatsdSink
from devtools.benchmark import Services, _prepare, copy_vision_cache, finished_run, plain_loop, write_benchmarks
from devtools.benchmark_steady import REQUEST_METRIC
from include.album.stores import db

HISTORY_DAG = "telegram_albums_history"
LIVE_CHANNELS, LIVE_CHANGED = 70, 70
PER_DAY = 15
TARGETS = {"runs": 15, "import_wall_s": 900, "live_to_quiet": 1.5, "quiet_channel_requests": 2}


@dataclass
class HistoryBench:
    channels: int
    days: int
    messages: int = 0
    albums: int = 0
    runs: int = 0
    runs_succeeded: int = 0
    import_s: float = 0.0
    requests: dict[str, int] = field(default_factory=dict)  # the import's, by kind
    ideal: int = 0
    per_channel: dict[str, int] = field(default_factory=dict)  # username -> requests (library, downloads aside)
    live_quiet_s: float = 0.0
    live_during_s: float = 0.0
    live_overlapped: bool = False
    live_requests: dict[str, int] = field(default_factory=dict)
    contrast_runs: int = 0
    contrast_run_s: float = 0.0
    contrast_requests: dict[str, int] = field(default_factory=dict)  # over its runs

    @property
    def reads(self) -> int:
        return sum(n for kind, n in self.requests.items() if kind != "get_file")

    @property
    def imported_channels(self) -> int:
        """Every channel the backfill read: those with a past, the quiet one and the live ones
        (subscribed too, with nothing before the span: one request each for it)."""
        return self.channels + 1 + LIVE_CHANNELS

    @property
    def budget(self) -> int:
        return 2 * self.ideal + self.imported_channels

    @property
    def messages_per_s(self) -> float:
        return self.messages / self.import_s if self.import_s else 0.0


def _requests(statsd: StatsdSink) -> Counter[str]:
    return Counter({name[len(REQUEST_METRIC):]: int(n) for name, n in statsd.counters.items()
                    if name.startswith(REQUEST_METRIC)})


def measure_history(services: Services, channels: int, days: int, work: Path) -> HistoryBench:
    from devtools.archive_edits import add_channels
    from devtools.sample import (
        HISTORY_START,
        STEADY_MARK,
        STEADY_WINDOW,
        build_history_archive,
        build_steady_archive,
        register_sample,
    )
    from include.album.stores.media import MediaStore

    bench = HistoryBench(channels=channels, days=days)
    archive, past_dir = work / "history_live", work / "history_past"
    for folder in (archive, past_dir):
        shutil.rmtree(folder, ignore_errors=True)
    live = build_steady_archive(archive, LIVE_CHANNELS, LIVE_CHANGED, windows=2)
    past = build_history_archive(past_dir, channels=channels, days=days, per_day=PER_DAY)
    add_channels(archive, past_dir)
    bench.messages, bench.albums = len(past["posts"]), len(past["albums"])
    sizes = Counter(p["channel_id"] for p in past["posts"])
    bench.ideal = sum(math.ceil(n / 100) for n in sizes.values())

    warm = services.fresh(live)  # the live channels' vision cache
    with db.connect(warm["pg"].dsn) as conn:
        conn.autocommit = True
        plain_loop(conn, MediaStore(services.s3_client(), warm["bucket"]), warm, archive, live, services.graph_port)
    target = services.fresh(live)
    copy_vision_cache(warm["pg"], target["pg"])
    with db.connect(target["pg"].dsn) as conn:
        conn.autocommit = True
        plain_loop(conn, MediaStore(services.s3_client(), target["bucket"]), target, archive, live,
                   services.graph_port, as_of=STEADY_MARK)
        register_sample(conn, past)

    statsd = StatsdSink()
    stack = services.stack(target, archive, replay=True, extra_env=statsd.env(), dag_ids=("telegram_albums",
                                                                                            HISTORY_DAG))
    try:
        w1 = stack.trigger(logical_date=STEADY_MARK + STEADY_WINDOW)
        assert stack.wait_for_run(w1, timeout=3600) == "success", "the quiet live window failed"
        bench.live_quiet_s, _ = finished_run(stack, w1)
        bench.live_requests = dict(_requests(statsd))

        before = _requests(statsd)
        first = HISTORY_START + timedelta(days=1)  # the run dated D imports the day before D
        stack.cli("backfill", "create", "--dag-id", HISTORY_DAG, "--from-date", first.isoformat(),
                  "--to-date", (first + timedelta(days=days - 1)).isoformat())
        stack.wait_for("the import to start", lambda: _history_runs(stack, running=True), timeout=600)
        w2 = stack.trigger(logical_date=STEADY_MARK + 2 * STEADY_WINDOW)
        assert stack.wait_for_run(w2, timeout=3600) == "success", "the live window during the import failed"
        bench.live_during_s, _ = finished_run(stack, w2)
        runs = stack.wait_for("the import", lambda: _history_runs(stack, finished=days), timeout=4 * 3600, every=5)
        bench.runs = len(runs)
        bench.runs_succeeded = sum(1 for r in runs if r["state"] == "success")
        started = min(datetime.fromisoformat(r["start_date"]) for r in runs)
        ended = max(datetime.fromisoformat(r["end_date"]) for r in runs)
        bench.import_s = (ended - started).total_seconds()
        w2_run = stack.run(w2)
        bench.live_overlapped = datetime.fromisoformat(w2_run["end_date"]) < ended
        spent = _requests(statsd) - before
        spent.subtract(bench.live_requests)  # W2's requests, as W1's: the same traffic
        bench.requests = dict(sorted((k, v) for k, v in spent.items() if v > 0))
        _check(target, past)

        contrast_from = HISTORY_START + timedelta(days=1, hours=11, minutes=55)
        before = _requests(statsd)
        stack.cli("backfill", "create", "--dag-id", "telegram_albums", "--from-date", contrast_from.isoformat(),
                  "--to-date", (contrast_from + timedelta(minutes=10)).isoformat())
        contrast = stack.wait_for("the contrast backfill", lambda: _backfill_runs(stack, "telegram_albums", 3),
                                  timeout=3600, every=3)
        bench.contrast_runs = len(contrast)
        bench.contrast_run_s = sum(finished_run(stack, r["dag_run_id"])[0] for r in contrast) / len(contrast)
        bench.contrast_requests = dict(_requests(statsd) - before)
    finally:
        stack.stop_all()
        statsd.close()
    bench.per_channel = _library_requests(services, past, past_dir, days)
    return bench


def _history_runs(stack: Any, *, running: bool = False, finished: int = 0) -> list[dict] | None:
    runs = stack.request("GET", f"/api/v2/dags/{HISTORY_DAG}/dagRuns", params={"run_type": "backfill"}
                         ).json()["dag_runs"]
    if running:
        return runs if any(r["state"] == "running" for r in runs) else None
    done = [r for r in runs if r["state"] in ("success", "failed")]
    return done if len(done) >= finished else None


def _backfill_runs(stack: Any, dag_id: str, count: int) -> list[dict] | None:
    runs = stack.request("GET", f"/api/v2/dags/{dag_id}/dagRuns", params={"run_type": "backfill"}).json()["dag_runs"]
    done = [r for r in runs if r["state"] in ("success", "failed")]
    return done if len(done) >= count else None


def _check(target: dict, past: dict) -> None:
    ids = [c["id"] for c in past["channels"]]
    with db.connect(target["pg"].dsn) as conn:
        stored = {(r["channel_id"], r["message_id"]) for r in conn.execute(
            "SELECT channel_id, message_id FROM posts WHERE channel_id = ANY(%s)", (ids,))}
        albums = conn.execute("SELECT items_count, status, meta -> 'index' IS NOT NULL AS indexed FROM media_groups "
                              "WHERE channel_id = ANY(%s)", (ids,)).fetchall()
    wanted = {(p["channel_id"], p["message_id"]) for p in past["posts"]}
    if stored != wanted:
        raise RuntimeError(f"history: {len(wanted - stored)} messages missing, {len(stored - wanted)} unexpected")
    if len(albums) != len(past["albums"]) or not all(a["status"] == "assembled" and a["indexed"] for a in albums):
        raise RuntimeError("history: albums missing, not assembled or not indexed")


def _library_requests(services: Services, past: dict, archive: Path, days: int) -> dict[str, int]:
    """Each channel's requests for the span, a day at a time through the library (a fresh client a
    day, as each run's task), downloads aside."""
    from devtools.sample import HISTORY_START
    from include.album.domain.settings import Settings
    from include.album.source.archive import ArchiveTelegramClient
    from include.album.source.pull import PullWindow
    from include.album.steps.history import import_history, reads
    from include.album.stores.media import MediaStore

    target = services.fresh(past)
    settings = Settings(s3_bucket=target["bucket"])
    store = MediaStore(services.s3_client(), target["bucket"])
    spent: dict[str, int] = {}
    with db.connect(target["pg"].dsn) as conn:
        conn.autocommit = True
        for channel in past["channels"]:
            total = 0
            for n in range(days):
                start = HISTORY_START + timedelta(days=n)
                client = ArchiveTelegramClient(archive)
                import_history(conn, store, client, [channel["id"]], settings, PullWindow(start, start + timedelta(1)))
                total += reads(client)
            spent[channel["username"]] = total
    return spent


def run_history(spec: str, out: Path, state_dir: Path | None = None) -> HistoryBench:
    channels, days = (int(n) for n in spec.split("/"))
    state, services = _prepare(state_dir)
    try:
        print(f"• history: {channels} channels x {days} days, beside {LIVE_CHANNELS} live channels", flush=True)
        started = time.perf_counter()
        bench = measure_history(services, channels, days, state)
        print(json.dumps(asdict(bench)), f"({time.perf_counter() - started:.0f} s)", flush=True)
        write_benchmarks(out, history=(bench, f"python -m devtools benchmark --history {spec}"))
    finally:
        services.stop()
    return bench


def history_section(data: dict) -> list[str]:
    """The history benchmark's tables and targets, from the report's JSON."""
    if not data.get("history"):
        return []
    raw = data["history"]
    b = HistoryBench(**{k: v for k, v in raw.items() if k in HistoryBench.__dataclass_fields__})
    per_run = {k: v / max(b.contrast_runs, 1) for k, v in b.contrast_requests.items()}
    during_note = "" if b.live_overlapped else " (ended after the import)"
    span_runs = b.days * 288
    contrast_reads = sum(v for k, v in per_run.items() if k != "get_file") * span_runs
    lines = ["", "## History: a channel's past through telegram_albums_history", "",
             f"Command: `{data['history_command']}`. {b.channels} channels × {b.days} days of history "
             f"({PER_DAY} messages a day each, one 3-photo album a day, one channel's albums across midnight) and a",
             "quiet channel (3 messages over the span), imported by one `airflow backfill create --dag-id "
             "telegram_albums_history` under a real LocalExecutor stack, beside 70 live channels whose 5-minute",
             "window runs once before the import (quiet) and once during it; tiny images.", "",
             "| messages | albums | runs | import wall s | messages/s | Telegram requests (downloads aside) | "
             "ideal Σ⌈messages/100⌉ | live window quiet s | live window during the import s |",
             "|---:|---:|---:|---:|---:|---|---:|---:|---:|",
             f"| {b.messages} | {b.albums} | {b.runs} ({b.runs_succeeded} succeeded) | {b.import_s:.0f} | "
             f"{b.messages_per_s:.1f} | {', '.join(f'{k} {v}' for k, v in b.requests.items())} | {b.ideal} | "
             f"{b.live_quiet_s:.1f} | {b.live_during_s:.1f}{during_note} |",
             "", f"The backfill reads every subscribed channel: the {LIVE_CHANNELS} live ones have nothing before the "
             f"span and cost one request each for it; the {b.channels + 1} with a past, "
             f"{b.reads - LIVE_CHANNELS} (the ideal: {b.ideal}).", "",
             "Per channel, the same days a run each through the library (`steps.history`, a fresh client a day): "
             + ", ".join(f"{name} {n}" for name, n in b.per_channel.items()) + " requests.", "",
             f"Contrast: the same channels' past through `telegram_albums`'s own backfill (5-minute windows), "
             f"{b.contrast_runs} runs measured: {b.contrast_run_s:.1f} s a run, "
             + ", ".join(f"{k} {v / max(b.contrast_runs, 1):.0f}" for k, v in b.contrast_requests.items())
             + f" requests a run; over the span: {span_runs} runs, ~{span_runs * b.contrast_run_s / 3600:.1f} h "
             f"and ~{contrast_reads:,.0f} requests (downloads aside).", "",
             "| target | figure | status |", "|---|---|---|"]
    quiet = min(b.per_channel.values()) if b.per_channel else 0

    def row(name: str, ok: bool, shown: str) -> str:
        return f"| {name} | {shown} | {'met' if ok else 'missed'} |"

    lines += [
        row(f"runs <= {TARGETS['runs']}", b.runs <= TARGETS["runs"], str(b.runs)),
        row(f"requests other than downloads <= 2 x ideal + 1 per channel read ({b.imported_channels} channels: "
            f"{b.budget})", 0 < b.reads <= b.budget, str(b.reads)),
        row("every message stored once, every album assembled and indexed", b.runs_succeeded == b.runs,
            "checked" if b.runs_succeeded == b.runs else "failed"),
        row(f"import wall <= {TARGETS['import_wall_s'] // 60} minutes", b.import_s <= TARGETS["import_wall_s"],
            f"{b.import_s:.0f} s"),
        row(f"a quiet channel (3 messages over the span) <= {TARGETS['quiet_channel_requests']} requests",
            quiet <= TARGETS["quiet_channel_requests"], str(quiet)),
        row("get_state requests in the live window and the import: 0",
            "get_state" not in b.requests and "get_state" not in b.live_requests, "0" if "get_state" not in
            b.requests and "get_state" not in b.live_requests else "some"),
        row(f"live window during the import <= {TARGETS['live_to_quiet']} x quiet",
            b.live_during_s <= TARGETS["live_to_quiet"] * b.live_quiet_s,
            f"{b.live_during_s:.1f} s vs {b.live_quiet_s:.1f} s = "
            f"{b.live_during_s / b.live_quiet_s if b.live_quiet_s else 0:.2f}x"),
    ]
    return lines
