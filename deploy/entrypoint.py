"""The entrypoint of every Airflow container in docker-compose.airflow.yml.

Compose hands each secret over from .env as it is, one variable each. This builds what Airflow
reads from them, every value escaped for where it goes: URL-encoded in the database URIs, JSON
strings in the ``AIRFLOW_CONN_*`` connections. With ``AIRFLOW_ADMIN_PASSWORD`` set (the
api-server's) it writes SimpleAuthManager's passwords file. Then it runs the image's own
entrypoint with the container's command.

Standard library only: it runs before anything else in the container.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import quote

# apache/airflow's entrypoint (it waits for the metadata database, then runs `airflow <command>`);
# AIRFLOW_IMAGE_ENTRYPOINT replaces it, for the tests.
IMAGE_ENTRYPOINT = "/entrypoint"


def required(env: Mapping[str, str], name: str) -> str:
    if not env.get(name):
        raise SystemExit(f"{name} is empty: set it in .env (docker-compose.airflow.yml passes it on)")
    return env[name]


def postgres_uri(scheme: str, user: str, password: str, location: str) -> str:
    """``scheme://user:password@location`` with user and password percent-encoded."""
    return f"{scheme}://{quote(user, safe='')}:{quote(password, safe='')}@{location}"


def connections(env: Mapping[str, str]) -> dict[str, str]:
    """The pipeline's connections, by conn id, as Airflow reads them from ``AIRFLOW_CONN_*``."""
    as_json = {
        "albums_s3": {"conn_type": "aws", "login": required(env, "MINIO_ROOT_USER"),
                      "password": required(env, "MINIO_ROOT_PASSWORD"),
                      "extra": {"endpoint_url": "http://minio:9000", "region_name": "us-east-1"}},
        "albums_redis": {"conn_type": "redis", "host": "redis", "port": 6379, "extra": {"db": 2}},
        "albums_qdrant": {"conn_type": "qdrant", "host": "qdrant", "port": 6333},
        "albums_graph": {"conn_type": "neo4j", "host": "neo4j", "port": 7687, "login": "neo4j",
                         "password": required(env, "NEO4J_PASSWORD")},
        "telegram_default": {"conn_type": "generic", "login": env.get("TELEGRAM_API_ID", ""),
                             "password": env.get("TELEGRAM_API_HASH", ""),
                             "extra": {"session": env.get("TELEGRAM_SESSION", ""),
                                       "archive": env.get("TELEGRAM_ARCHIVE", "")}},
        "albums_alert_webhook": {"conn_type": "http", "extra": {"url": env.get("ALERT_WEBHOOK_URL", "")}},
    }
    # The updates listener's own session (a second login); without one (nor an archive to replay)
    # the connection is not defined and telegram_albums runs on its 5-minute schedule alone.
    if env.get("TELEGRAM_UPDATES_SESSION") or env.get("TELEGRAM_ARCHIVE"):
        as_json["telegram_updates"] = {"conn_type": "generic", "login": env.get("TELEGRAM_API_ID", ""),
                                       "password": env.get("TELEGRAM_API_HASH", ""),
                                       "extra": {"session": env.get("TELEGRAM_UPDATES_SESSION", ""),
                                                 "archive": env.get("TELEGRAM_ARCHIVE", "")}}
    albums_db = postgres_uri("postgresql", "albums", required(env, "POSTGRES_PASSWORD"),
                             "postgres:5432/albums?connect_timeout=10")
    return {"albums_db": albums_db, **{conn_id: json.dumps(conn) for conn_id, conn in as_json.items()}}


def airflow_environment(env: Mapping[str, str]) -> dict[str, str]:
    """The variables to add to ``env``: metadata database, Celery result backend, connections, settings."""
    password = required(env, "POSTGRES_PASSWORD")
    return {
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": postgres_uri("postgresql+psycopg", "airflow", password,
                                                            "postgres/airflow"),
        "AIRFLOW__CELERY__RESULT_BACKEND": postgres_uri("db+postgresql", "airflow", password, "postgres/airflow"),
        **{f"AIRFLOW_CONN_{conn_id.upper()}": value for conn_id, value in connections(env).items()},
        "AIRFLOW_VAR_TELEGRAM_ALBUMS_SETTINGS": json.dumps({"s3_bucket": env.get("S3_BUCKET") or "telegram-albums"}),
    }


def write_passwords_file(path: Path, admin_password: str) -> None:
    """SimpleAuthManager's ``{"user": "password"}`` file, readable by this container's user only."""
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_text(json.dumps({"admin": admin_password}) + "\n")


def main(command: list[str]) -> None:
    env = {**os.environ, **airflow_environment(os.environ)}
    if admin_password := env.get("AIRFLOW_ADMIN_PASSWORD"):
        write_passwords_file(Path(required(env, "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE")), admin_password)
    entrypoint = env.get("AIRFLOW_IMAGE_ENTRYPOINT", IMAGE_ENTRYPOINT)
    os.execvpe(entrypoint, [entrypoint, *command], env)


if __name__ == "__main__":
    main(sys.argv[1:])
