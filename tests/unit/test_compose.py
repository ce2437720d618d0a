"""docker-compose.airflow.yml, checked by parsing (no Docker engine here); its scripts run in
test_compose_scripts.py."""

import re
from dataclasses import fields
from pathlib import Path

import yaml

from deploy.entrypoint import airflow_environment
from include.album.domain.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_TEXT = (ROOT / "docker-compose.airflow.yml").read_text()
COMPOSE = yaml.safe_load(COMPOSE_TEXT)
SERVICES = COMPOSE["services"]
AIRFLOW = ["airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer"]
ALL_AIRFLOW = [*AIRFLOW, "airflow-init", "airflow-worker", "airflow-worker-vision"]
ENTRYPOINT = ["/usr/bin/dumb-init", "--", "python", "/opt/airflow/deploy/entrypoint.py"]
# What .env must set: compose refuses to start without them (${NAME:?message}).
REQUIRED = ["AIRFLOW_FERNET_KEY", "AIRFLOW_JWT_SECRET", "AIRFLOW_ADMIN_PASSWORD", "POSTGRES_PASSWORD",
            "MINIO_ROOT_USER", "MINIO_ROOT_PASSWORD", "NEO4J_PASSWORD", "GRAFANA_ADMIN_PASSWORD"]
REFERENCE = re.compile(r"\$\$|\$\{(?P<name>\w+)(?:(?P<op>:-|:\?)(?P<arg>[^}]*))?\}")


def env(service: str) -> dict:
    return SERVICES[service]["environment"]


def interpolated(value: object, dotenv: dict[str, str]) -> str:
    """A compose value as compose makes it from ``dotenv`` (the .env file): ``$$`` is a literal ``$``."""

    def one(match: re.Match) -> str:
        if match[0] == "$$":
            return "$"
        if dotenv.get(match["name"]):
            return dotenv[match["name"]]
        if match["op"] == ":?":
            raise ValueError(f"compose refuses to start: {match['name']}: {match['arg']}")
        return match["arg"] or ""

    return REFERENCE.sub(one, str(value))


def container_env(service: str, dotenv: dict[str, str]) -> dict[str, str]:
    return {key: interpolated(value, dotenv) for key, value in env(service).items()}


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


def test_every_airflow_container_starts_with_the_entrypoint_that_builds_its_connections():
    assert "COPY deploy/entrypoint.py /opt/airflow/deploy/entrypoint.py" in (ROOT / "Dockerfile").read_text()
    for service in ALL_AIRFLOW:
        assert SERVICES[service]["entrypoint"] == ENTRYPOINT, service
    assert SERVICES["airflow-init"]["command"][0] == "bash"  # the image's entrypoint runs it as it is


def test_the_readme_login_runs_in_an_airflow_container_that_has_the_telegram_keys():
    readme = (ROOT / "README.md").read_text().replace("\\\n", " ")
    [command] = [line.split() for line in readme.splitlines()
                 if line.startswith("docker compose") and "include.album login" in line]
    run = command.index("run")
    assert command[:run] == ["docker", "compose", "-f", "docker-compose.airflow.yml", "--env-file", ".env"]
    service = command[command.index("python") - 1]
    assert command[command.index("python"):] == ["python", "-m", "include.album", "login"]
    assert "CONNECTION_CHECK_MAX_COUNT=0" in command  # the image's entrypoint: no wait for the metadata DB
    assert service in AIRFLOW and "profiles" not in SERVICES[service]
    assert SERVICES[service]["entrypoint"] == ENTRYPOINT  # which ends in the image's, and that runs `python`
    assert {"TELEGRAM_API_ID", "TELEGRAM_API_HASH"} <= env(service).keys()


def test_every_connection_the_dag_uses_is_defined():
    wanted = {getattr(Settings(), f.name) for f in fields(Settings) if f.name.endswith("_conn_id")}
    wanted -= {"vision_openai", "embeddings_openai"}  # only with the openai providers (README)
    wanted.add("albums_alert_webhook")
    dotenv = dict.fromkeys(REQUIRED, "secret")
    for service in ALL_AIRFLOW:
        built = airflow_environment(container_env(service, dotenv))  # what the entrypoint adds
        defined = {key[len("AIRFLOW_CONN_"):].lower() for key in built if key.startswith("AIRFLOW_CONN_")}
        assert wanted <= defined, f"{service} lacks {wanted - defined}"


def test_airflow_gets_each_variable_whole_never_pasted_into_a_uri_or_json():
    for service in ALL_AIRFLOW:
        for key, value in env(service).items():
            assert "$" not in str(value) or REFERENCE.fullmatch(str(value)), f"{service}: {key}={value}"
            assert not key.startswith("AIRFLOW_CONN_"), f"{service}: {key} belongs to deploy/entrypoint.py"


def test_compose_refuses_to_start_without_the_fernet_key_and_the_other_secrets():
    assert env("airflow-scheduler")["AIRFLOW__CORE__FERNET_KEY"].startswith("${AIRFLOW_FERNET_KEY:?")
    for secret in REQUIRED:
        uses = {match["op"] for match in REFERENCE.finditer(COMPOSE_TEXT) if match["name"] == secret}
        assert uses == {":?"}, f"{secret}: every use must be ${{{secret}:?message}}, not {uses}"


def test_env_example_lists_every_variable_compose_needs_with_secrets_empty():
    example = dict(line.split("=", 1) for line in (ROOT / ".env.example").read_text().splitlines()
                   if line and not line.startswith("#"))
    needed = {m["name"] for m in REFERENCE.finditer(COMPOSE_TEXT) if m["name"] and m["op"] != ":-"}
    assert needed <= set(example), f".env.example lacks {needed - set(example)}"
    assert set(REQUIRED) <= set(example)
    for key, value in example.items():
        if any(word in key for word in ("PASSWORD", "SECRET", "HASH", "SESSION", "KEY")):
            assert value == "", f"{key} must be empty in .env.example"


def test_only_the_api_server_gets_the_admin_password_it_writes_into_its_passwords_file():
    assert env("airflow-apiserver")["AIRFLOW_ADMIN_PASSWORD"].startswith("${AIRFLOW_ADMIN_PASSWORD:?")
    assert env("airflow-apiserver")["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"]
    for service in ALL_AIRFLOW:
        if service != "airflow-apiserver":
            assert "AIRFLOW_ADMIN_PASSWORD" not in env(service), service


def test_every_image_is_pinned_to_an_exact_version():
    release = r"v?\d+\.\d+\.\d+(-[a-z0-9]+)*|RELEASE\.\d{4}-\d\d-\d\dT\d\d-\d\d-\d\dZ"
    for name, service in SERVICES.items():
        if "build" in service:  # this project's image, FROM a pinned one
            continue
        image, _, tag = service["image"].rpartition(":")
        exact = r"\d+\.\d+(-[a-z0-9]+)*" if image == "postgres" else release  # PostgreSQL: major.minor
        assert re.fullmatch(exact, tag), f"{name}: {service['image']} is not an exact version"
    assert re.search(r"^FROM apache/airflow:\d+\.\d+\.\d+-python3\.\d+$", (ROOT / "Dockerfile").read_text(), re.M)


def test_airflow_waits_for_qdrant_and_neo4j_to_be_healthy():
    for name in ("qdrant", "neo4j", "postgres", "redis", "minio"):
        assert SERVICES[name]["healthcheck"]["test"][0] == "CMD", name
    for service in ALL_AIRFLOW:
        depends = SERVICES[service]["depends_on"]
        for name in ("qdrant", "neo4j", "postgres", "redis"):
            assert depends[name] == {"condition": "service_healthy"}, f"{service} on {name}"


def test_include_is_mounted_and_importable_in_every_airflow_container():
    for service in (*AIRFLOW, "airflow-worker", "airflow-init"):
        volumes = SERVICES[service]["volumes"]
        assert "./include:/opt/airflow/include" in volumes and "./plugins:/opt/airflow/plugins" in volumes
        assert env(service)["PYTHONPATH"] == "/opt/airflow"
    assert (ROOT / "include" / "__init__.py").is_file()
    assert env("airflow-scheduler")["AIRFLOW__API_AUTH__JWT_SECRET"].startswith("${AIRFLOW_JWT_SECRET:?")


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
