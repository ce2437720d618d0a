"""The monitoring files agree with the code: every metric mapped, rules valid and tested by promtool,
every dashboard query on a metric that exists."""

import fnmatch
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from include.album.steps.metrics import METRICS

MONITORING = Path(__file__).resolve().parents[2] / "monitoring"
MAPPING = yaml.safe_load((MONITORING / "statsd" / "mapping.yml").read_text())["mappings"]


def promtool() -> str:
    path = shutil.which("promtool")
    assert path, "promtool is missing: apt-get install prometheus (.ci/run does)"
    return path


def mapping_for(statsd_name: str) -> dict:
    matches = [m for m in MAPPING if fnmatch.fnmatchcase(statsd_name, m["match"])
               and m["match"].count(".") == statsd_name.count(".")]
    assert len(matches) == 1, f"{statsd_name}: {len(matches)} mappings match"
    return matches[0]


def wire_names(metric) -> list[str]:
    base = f"airflow.{metric.name}"
    return [f"{base}.{value}" for value in metric.values] if metric.label else [base]


@pytest.mark.parametrize("metric", METRICS.values(), ids=lambda m: m.prometheus)
def test_every_pipeline_metric_is_mapped_to_its_prometheus_name(metric):
    for name in wire_names(metric):
        rule = mapping_for(name)
        assert rule["name"] == metric.prometheus
        if metric.label:
            assert rule["labels"] == {metric.label: "$1"}
        if metric.kind == "histogram":
            assert rule["histogram_options"]["buckets"] == list(metric.buckets)


def test_the_old_systems_six_metrics_keep_their_names():
    old_six = {"albums_parsed_total", "albums_assembled_total", "album_assembly_lag_seconds",
               "album_items_count_gauge", "album_vision_summary_size_bytes", "album_aggregation_duration_ms"}
    assert old_six <= set(METRICS)
    labels = (None, "status", "reason", "outcome", "kind", "method")
    assert all(m.label in labels for m in METRICS.values())  # no per-album labels


def test_airflow_metrics_get_dag_and_task_labels():
    assert mapping_for("airflow.ti.finish.telegram_albums.ingest.failed")["labels"] == {
        "dag_id": "$1", "task_id": "$2", "state": "$3"}
    assert mapping_for("airflow.dagrun.duration.success.telegram_albums")["name"] == "airflow_dagrun_duration_seconds"
    assert mapping_for("airflow.deadline_alerts.deadline_missed")["name"] == "airflow_deadline_missed_total"


def test_alert_rules_pass_promtool_check_and_unit_tests():
    tool = promtool()
    check = subprocess.run([tool, "check", "rules", str(MONITORING / "prometheus/rules/album_pipeline.yml")],
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    test = subprocess.run([tool, "test", "rules", "album_pipeline_test.yml"], cwd=MONITORING / "prometheus/tests",
                          capture_output=True, text=True)
    assert test.returncode == 0, test.stdout + test.stderr


def test_prometheus_config_passes_promtool(tmp_path):
    config = (MONITORING / "prometheus/prometheus.yml").read_text().replace(
        "/etc/prometheus/rules", str(MONITORING / "prometheus/rules"))
    (tmp_path / "prometheus.yml").write_text(config)
    check = subprocess.run([promtool(), "check", "config", str(tmp_path / "prometheus.yml")],
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr


def test_dashboard_queries_use_metrics_that_exist():
    dashboard = json.loads((MONITORING / "grafana/dashboards/album_pipeline.json").read_text())
    exported = {m["name"] for m in MAPPING}
    rules = (MONITORING / "prometheus/rules/album_pipeline.yml").read_text()
    queries = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    assert len(dashboard["panels"]) >= 11 and queries
    names = re.compile(r"\b([a-z_]+(?:_total|_seconds|_bytes|_ms|_gauge))(?:_bucket|_count|_sum)?\b")
    for text in [*queries, rules]:
        for name in names.findall(text):
            assert name in exported, f"{name} is not produced by the statsd mapping"
    titles = {p["title"] for p in dashboard["panels"]}
    assert {"Albums parsed rate", "Albums assembled rate", "Album assembly lag", "Albums in progress",
            "Albums by status", "Album aggregation duration (p95)", "Album vision summary size (p95)",
            "Active alerts", "telegram_albums run duration", "telegram_albums schedule delay",
            "Task failures"} <= titles
