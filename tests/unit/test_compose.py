"""docker-compose.airflow.yml, checked by parsing (no Docker engine here)."""

import re
from dataclasses import fields
from pathlib import Path

import yaml

from include.album.domain.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.airflow.yml").read_text())
SERVICES = COMPOSE["services"]
AIRFLOW = ["airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer"]


def env(service: str) -> dict:
    return SERVICES[service]["environment"]


def test_the_stack_has_every_service_and_every_reference_exists():
    for name in ("postgres", "redis", "minio", "minio-init", "qdrant", "neo4j", "statsd-exporter", "prometheus",
                 "grafana", *AIRFLOW, "airflow-worker", "airflow-worker-vision"):
        assert name in SERVICES, name
    for name, service in SERVICES.items():
        depends = service.get("depends_on", {})
        for dependency in (depends if isinstance(depends, list) else depends.keys()):
            assert dependency in SERVICES, f"{name} depends on missing {dependency}"
    assert SERVICES["airflow-worker"]["profiles"] == ["celery"]
    assert "LocalExecutor" in env("airflow-scheduler")["AIRFLOW__CORE__EXECUTOR"]


def test_every_connection_the_dag_uses_is_defined():
    wanted = {getattr(Settings(), f.name) for f in fields(Settings) if f.name.endswith("_conn_id")}
    wanted -= {"vision_openai", "embeddings_openai"}  # only with the openai providers (README)
    wanted.add("albums_alert_webhook")
    for service in AIRFLOW:
        defined = {key[len("AIRFLOW_CONN_"):].lower() for key in env(service) if key.startswith("AIRFLOW_CONN_")}
        assert wanted <= defined, f"{service} lacks {wanted - defined}"


def test_secrets_come_from_env_and_env_example_lists_them():
    text = (ROOT / "docker-compose.airflow.yml").read_text()
    for secret in ("TELEGRAM_API_HASH", "TELEGRAM_SESSION", "POSTGRES_PASSWORD", "MINIO_ROOT_PASSWORD",
                   "NEO4J_PASSWORD", "AIRFLOW_JWT_SECRET", "GRAFANA_ADMIN_PASSWORD"):
        assert "${" + secret + "}" in text
    example = dict(line.split("=", 1) for line in (ROOT / ".env.example").read_text().splitlines()
                   if line and not line.startswith("#"))
    required = set(re.findall(r"\$\{([A-Z_]+)\}", text))
    assert required <= set(example), f".env.example lacks {required - set(example)}"
    for key, value in example.items():
        if any(word in key for word in ("PASSWORD", "SECRET", "HASH", "SESSION")):
            assert value == "", f"{key} must be empty in .env.example"


def test_include_is_mounted_and_importable_in_every_airflow_container():
    for service in (*AIRFLOW, "airflow-worker", "airflow-init"):
        volumes = SERVICES[service]["volumes"]
        assert "./include:/opt/airflow/include" in volumes and "./plugins:/opt/airflow/plugins" in volumes
        assert env(service)["PYTHONPATH"] == "/opt/airflow"
    assert (ROOT / "include" / "__init__.py").is_file()
    assert env("airflow-scheduler")["AIRFLOW__API_AUTH__JWT_SECRET"] == "${AIRFLOW_JWT_SECRET}"


def test_monitoring_files_are_mounted_where_the_tools_read_them():
    for service, path in (("statsd-exporter", "./monitoring/statsd/mapping.yml"),
                          ("prometheus", "./monitoring/prometheus/rules"),
                          ("grafana", "./monitoring/grafana/dashboards")):
        source = [v.split(":")[0] for v in SERVICES[service]["volumes"]]
        assert path in source and (ROOT / path).exists()
    assert env("airflow-scheduler")["AIRFLOW__METRICS__STATSD_HOST"] == "statsd-exporter"


def test_celery_workers_listen_on_the_queues_the_dag_routes_to():
    from include.album.orchestration.deployment import INDEX_QUEUE, TELEGRAM_QUEUE, VISION_QUEUE

    def queues(service: str) -> set[str]:
        command = SERVICES[service]["command"]
        listed = re.search(r"--queues (\S+)", command)[1]
        return {re.sub(r"\$\{[A-Z_]+:-([a-z]+)\}", r"\1", name) for name in listed.split(",")}

    assert queues("airflow-worker") == {"default", TELEGRAM_QUEUE, INDEX_QUEUE}
    assert queues("airflow-worker-vision") == {VISION_QUEUE}
    assert SERVICES["airflow-worker-vision"]["profiles"] == ["celery"]
    for name in ("TELEGRAM_ALBUMS_TELEGRAM_QUEUE", "TELEGRAM_ALBUMS_VISION_QUEUE", "TELEGRAM_ALBUMS_INDEX_QUEUE"):
        assert name in env("airflow-scheduler") and name in env("airflow-worker")
    broker = env("airflow-worker")["AIRFLOW__CELERY__BROKER_URL"]
    assert broker.startswith("redis://redis:6379/") and broker != "redis://redis:6379/2"  # not albums_redis's db


def resolved(value: str) -> str:
    """A compose value with ``${NAME:-default}`` replaced by its default."""
    return re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", str(value))


def test_the_shipped_stacks_carry_the_airflow_tuning_the_benchmark_measures_with():
    from devtools.airflow_stack import CELERY_TUNING, LOCAL_EXECUTOR_TUNING, TUNING

    for service in (*AIRFLOW, "airflow-worker", "airflow-worker-vision"):
        shipped = {key: resolved(value) for key, value in env(service).items()}
        for key, value in {**TUNING, **LOCAL_EXECUTOR_TUNING, **CELERY_TUNING}.items():
            assert shipped.get(key) == value, f"{service}: {key}={shipped.get(key)!r}, the benchmark uses {value!r}"

    helm = (ROOT / "docs" / "scaling.md").read_text()  # the CeleryExecutor there: no LocalExecutor settings
    values = yaml.safe_load(re.search(r"```yaml\n(executor: CeleryExecutor.*?)```", helm, re.S)[1])["config"]
    for key, value in {**TUNING, **CELERY_TUNING}.items():
        section, option = key.removeprefix("AIRFLOW__").lower().split("__")
        if option == "parallelism":  # sized for the workers' cores there
            assert values[section][option] >= int(value)
            continue
        assert str(values[section][option]) == value, f"docs/scaling.md Helm values: {section}.{option}"
