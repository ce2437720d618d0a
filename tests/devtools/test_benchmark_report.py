"""The benchmark's report: parts merged across invocations, hand-written notes kept, targets judged."""

import json

from devtools.benchmark import HISTORY_MARKER, CeleryResult, SizeResult, write_benchmarks


def size(albums: int, **figures) -> SizeResult:
    base = dict(messages=albums * 4, ingest_no_media_s=albums * 4 / 6000, loop_s=albums * 0.1, dag_s=albums * 0.12,
                dag_state="success", rerun_s=albums * 0.01, rerun_vision_calls=0, rerun_media_puts=0,
                stack_s=albums * 0.2, stack_tasks=136, heaviest_task="album.index", heaviest_task_rss_mb=300.0)
    return SizeResult(albums=albums, **(base | figures))


def test_sizes_merge_by_album_count_and_notes_below_the_marker_survive(tmp_path):
    out = tmp_path / "benchmarks.md"
    write_benchmarks(out, sizes=[size(100), size(1000)])
    out.write_text(out.read_text() + "\nA profile written by hand.\n")
    write_benchmarks(out, sizes=[size(3000, heaviest_task_rss_mb=655.0)])
    write_benchmarks(out, celery=([CeleryResult(vision_workers=1, wall_s=46.5, state="success", tasks=32, vision_s=13.1,
                                            vision_tasks_by_worker={"vision-1": 6})], "benchmark --executor celery"))
    data = json.loads(out.with_suffix(".json").read_text())
    assert [r["albums"] for r in data["results"]] == [100, 1000, 3000]
    assert data["command"].endswith("--sizes 100,1000,3000") and data["celery"][0]["vision_workers"] == 1
    text = out.read_text()
    assert text.index(HISTORY_MARKER) < text.index("A profile written by hand.")
    assert "| 1 | 46.5 (success) | 32 | 13.1 | vision-1: 6 |" in text
    assert "| DAG / plain loop <= 1.5 at 1,000 albums | 1.20 | met |" in text
    assert "| a 3,000-album run completes | success | met |" in text
    assert "| peak RSS of any task <= 400 MB at 3,000 albums | 655 MB (album.index) | missed |" in text
    assert "| wall time 100 -> 1,000 albums grows <= 11x | 10.0x | met |" in text


def test_steady_windows_merge_by_name_and_each_target_is_judged(tmp_path):
    from devtools.benchmark_steady import SteadyResult, parse_windows

    def window(name: str, channels: int, changed: int, dag_s: float, requests: dict) -> SteadyResult:
        return SteadyResult(window=name, channels=channels, changed=changed, loop_s=5.0, dag_s=dag_s,
                            dag_state="success", dag_tasks=45, floor_s=25.0, dag_requests=requests,
                            loop_requests={"GetFileRequest": 348, "GetMessagesRequest": 200})

    out = tmp_path / "benchmarks.md"
    write_benchmarks(out, steady=([window("A", 200, 200, 44.0, {"get_file": 348, "get_messages": 200,
                                                            "get_peer_dialogs": 2})], "benchmark --steady A"))
    write_benchmarks(out, steady=([window("B", 1000, 200, 60.0, {"get_file": 348, "get_messages": 430,
                                                             "get_peer_dialogs": 10})], "benchmark --steady B"))
    data = json.loads(out.with_suffix(".json").read_text())
    assert [w["window"] for w in data["steady"]] == ["A", "B"] and data["steady_command"].endswith("--steady A,B")
    text = out.read_text()
    assert "| A: 200 channels, all changed: wall <= 60 s | 44.0 s | met |" in text
    assert "| B: 1,000 channels, 200 changed: wall <= 1.25x A's | 60.0 s = 1.36x | missed |" in text
    assert "| B: Telegram requests other than downloads <= 410 | 440 | missed |" in text  # downloads apart
    assert "| C: 1,000 channels, all changed: wall <= 180 s | not measured | not measured |" in text
    assert "get_file 348, get_messages 200" in text  # the loop's type names, as the metric labels them
    assert parse_windows("A,40/10") == [("A", 200, 200), ("40/10", 40, 10)]


def test_the_freshness_section_judges_latency_runs_requests_and_losses(tmp_path):
    from devtools.benchmark_freshness import FreshnessBench

    bench = FreshnessBench(channels=50, minutes=30, albums=100, down_minutes=5, heard={"p50": 22.9, "p95": 57.0,
                           "max": 61.6}, heard_albums=85, down={"p50": 221.0, "p95": 319.2, "max": 319.2},
                           down_albums=15, stored=100, minimal_runs=3, minimal_run_s={"p50": 13.3, "max": 16.2},
                           minimal_profile=[["migrate", 0.1, 1.2], ["index_posts", -0.9, 1.1]],
                           listener_requests_per_hour={"get_messages": 194.2, "get_difference": 2.0},
                           cron_only_requests_per_hour={"get_messages": 158.5})
    out = tmp_path / "benchmarks.md"
    write_benchmarks(out, freshness=(bench, "python -m devtools benchmark --freshness 50/30"))
    text = out.read_text()
    assert "| while the listener ran | 85 | 22.9 / 57.0 / 61.6 |" in text
    assert "| post → searchable p95 ≤ 60 s | 57.0 s | met |" in text
    assert "| minimal run ≤ 20 s | 13.3 s | met |" in text
    assert "| index_posts | 0.00 | 1.10 |" in text  # (it ran beside the task before it)
    assert "| requests per hour ≤ the schedule only's | 196 vs 158 | missed |" in text
    assert "| nothing lost or duplicated with the listener down | 100/100, 0 duplicated | met |" in text


def test_both_designs_are_counted_until_the_schedule_has_run_after_the_last_post():
    from datetime import UTC, datetime

    from devtools.benchmark_freshness import _tick_after

    assert _tick_after(datetime(2026, 1, 1, 10, 3, 20, tzinfo=UTC)) == datetime(2026, 1, 1, 10, 5, tzinfo=UTC)
    assert _tick_after(datetime(2026, 1, 1, 10, 5, tzinfo=UTC)) == datetime(2026, 1, 1, 10, 5, tzinfo=UTC)
    assert _tick_after(datetime(2026, 1, 1, 10, 55, 1, tzinfo=UTC)) == datetime(2026, 1, 1, 11, 0, tzinfo=UTC)
