"""The scripts of docker-compose.airflow.yml, run here with secrets full of the characters that break
URIs, JSON, SQL and shells: deploy/entrypoint.py, the Postgres init script, minio-init's command
and the Qdrant and Neo4j healthchecks."""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.server
import json
import os
import re
import subprocess
import sys
import threading
import uuid
from urllib.parse import unquote, urlsplit

import psycopg
import pytest
from airflow.secrets.environment_variables import EnvironmentVariablesBackend
from psycopg import sql
from sqlalchemy.engine import make_url

from deploy.entrypoint import airflow_environment
from tests.unit.test_compose import REQUIRED, ROOT, SERVICES, container_env, interpolated

HOSTILE = 'p"a\'ss@w/o:rd%#? \\$x'
OPTIONAL = ["TELEGRAM_API_ID", "TELEGRAM_API_HASH", "TELEGRAM_SESSION", "TELEGRAM_UPDATES_SESSION", "TELEGRAM_ARCHIVE",
            "ALERT_WEBHOOK_URL"]
# .env with every secret hostile, and each its own so that a mix-up shows.
DOTENV = {name: f"{HOSTILE}-{name}" for name in [*REQUIRED, *OPTIONAL]}
# Stands in for the image's entrypoint: prints the command and the environment it was given.
STAND_IN = "import json, os, sys; print(json.dumps({'command': sys.argv[1:], 'env': dict(os.environ)}))"


def start(service: str, tmp_path, dotenv: dict[str, str] = DOTENV) -> subprocess.CompletedProcess:
    """deploy/entrypoint.py as ``service``'s container runs it, its passwords file in ``tmp_path``."""
    env = {**container_env(service, dotenv), "PATH": os.environ["PATH"], "AIRFLOW_IMAGE_ENTRYPOINT": sys.executable,
           "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(tmp_path / "passwords.json")}
    return subprocess.run([sys.executable, ROOT / "deploy" / "entrypoint.py", "-c", STAND_IN, "api-server"],
                          env=env, capture_output=True, text=True, timeout=60)


def test_the_api_server_writes_the_admin_password_from_env_into_its_passwords_file(tmp_path):
    started = start("airflow-apiserver", tmp_path)
    assert started.returncode == 0, started.stderr
    assert json.loads(started.stdout)["command"] == ["api-server"]
    passwords = tmp_path / "passwords.json"
    assert json.loads(passwords.read_text()) == {"admin": DOTENV["AIRFLOW_ADMIN_PASSWORD"]}
    assert passwords.stat().st_mode & 0o777 == 0o600



def test_without_a_listener_session_or_an_archive_the_listener_connection_is_not_defined():
    required = {name: f"x-{name}" for name in REQUIRED}
    assert "AIRFLOW_CONN_TELEGRAM_UPDATES" not in airflow_environment(required)
    assert "AIRFLOW_CONN_TELEGRAM_UPDATES" in airflow_environment({**required, "TELEGRAM_UPDATES_SESSION": "s"})

def test_hostile_secrets_reach_every_connection_and_database_uri_intact(tmp_path):
    started = start("airflow-scheduler", tmp_path)
    assert started.returncode == 0, started.stderr
    env = json.loads(started.stdout)["env"]
    assert not (tmp_path / "passwords.json").exists()  # no admin password outside the api-server

    def connection(conn_id: str):  # as Airflow reads it from AIRFLOW_CONN_<ID>, JSON or URI
        return EnvironmentVariablesBackend().deserialize_connection(conn_id, env[f"AIRFLOW_CONN_{conn_id.upper()}"])

    albums_db = connection("albums_db")
    assert (albums_db.login, albums_db.password, albums_db.host, albums_db.schema) == (
        "albums", DOTENV["POSTGRES_PASSWORD"], "postgres", "albums")
    assert unquote(urlsplit(env["AIRFLOW_CONN_ALBUMS_DB"]).password) == DOTENV["POSTGRES_PASSWORD"]
    s3 = connection("albums_s3")
    assert (s3.login, s3.password) == (DOTENV["MINIO_ROOT_USER"], DOTENV["MINIO_ROOT_PASSWORD"])
    assert connection("albums_graph").password == DOTENV["NEO4J_PASSWORD"]
    telegram = connection("telegram_default")
    assert (telegram.login, telegram.password) == (DOTENV["TELEGRAM_API_ID"], DOTENV["TELEGRAM_API_HASH"])
    assert telegram.extra_dejson == {"session": DOTENV["TELEGRAM_SESSION"], "archive": DOTENV["TELEGRAM_ARCHIVE"]}
    updates = connection("telegram_updates")  # the listener's own session, beside the same api_id/api_hash
    assert (updates.login, updates.password) == (DOTENV["TELEGRAM_API_ID"], DOTENV["TELEGRAM_API_HASH"])
    assert updates.extra_dejson == {"session": DOTENV["TELEGRAM_UPDATES_SESSION"],
                                    "archive": DOTENV["TELEGRAM_ARCHIVE"]}
    assert connection("albums_alert_webhook").extra_dejson == {"url": DOTENV["ALERT_WEBHOOK_URL"]}

    metadata = make_url(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
    results = make_url(env["AIRFLOW__CELERY__RESULT_BACKEND"].removeprefix("db+"))  # Celery strips db+
    for url in (metadata, results):
        assert (url.username, url.password, url.host, url.database) == (
            "airflow", DOTENV["POSTGRES_PASSWORD"], "postgres", "airflow")
    assert env["AIRFLOW__CORE__FERNET_KEY"] == DOTENV["AIRFLOW_FERNET_KEY"]
    assert env["AIRFLOW__API_AUTH__JWT_SECRET"] == DOTENV["AIRFLOW_JWT_SECRET"]


def test_the_entrypoint_names_the_secret_it_lacks(tmp_path):
    env = {**airflow_environment(DOTENV), **DOTENV, "NEO4J_PASSWORD": "", "PATH": os.environ["PATH"]}
    started = subprocess.run([sys.executable, ROOT / "deploy" / "entrypoint.py", "scheduler"], env=env,
                             capture_output=True, text=True, timeout=60)
    assert started.returncode != 0 and "NEO4J_PASSWORD is empty: set it in .env" in started.stderr


def scram_matches(verifier: str, password: str) -> bool:
    """Whether PostgreSQL's ``SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`` is ``password``'s."""
    method, iterations_salt, keys = verifier.split("$")
    iterations, salt = iterations_salt.split(":")
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(salt), int(iterations))
    client_key = hmac.digest(salted, b"Client Key", "sha256")
    return method == "SCRAM-SHA-256" and hashlib.sha256(client_key).digest() == base64.b64decode(keys.split(":")[0])


@pytest.mark.integration
def test_the_albums_database_gets_the_hostile_password_and_the_entrypoint_uri_logs_in():
    from tests.conftest import ADMIN_DSN, PG_HOST, PG_PORT, PG_USER

    name = f"albums_compose_test_{uuid.uuid4().hex[:8]}"  # the shared server may have an "albums"
    password = container_env("postgres", DOTENV)["ALBUMS_PASSWORD"]
    env = {"PATH": os.environ["PATH"], "PGHOST": PG_HOST, "PGPORT": str(PG_PORT), "POSTGRES_USER": PG_USER,
           "POSTGRES_DB": "postgres", "ALBUMS_USER": name, "ALBUMS_DB": name, "ALBUMS_PASSWORD": password}
    try:
        for _ in range(2):  # a second run only sets the password again
            ran = subprocess.run(["bash", ROOT / "monitoring" / "postgres" / "init-albums-db.sh"], env=env,
                                 capture_output=True, text=True, timeout=60)
            assert ran.returncode == 0, ran.stderr
        with psycopg.connect(ADMIN_DSN) as admin:
            verifier = admin.execute("SELECT rolpassword FROM pg_authid WHERE rolname = %s", (name,)).fetchone()[0]
            owner = admin.execute("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s",
                                  (name,)).fetchone()[0]
        assert owner == name
        assert scram_matches(verifier, DOTENV["POSTGRES_PASSWORD"]) and not scram_matches(verifier, "albums")

        # The URI the entrypoint builds, pointed at this server and the throwaway names: libpq decodes
        # the password it carries (the local server trusts 127.0.0.1, so the check above is the proof).
        uri = airflow_environment(container_env("airflow-scheduler", DOTENV))["AIRFLOW_CONN_ALBUMS_DB"]
        with psycopg.connect(uri.removesuffix("?connect_timeout=10"), host=PG_HOST, port=PG_PORT, user=name,
                             dbname=name) as conn:
            assert conn.info.password == DOTENV["POSTGRES_PASSWORD"]
            assert conn.execute("SELECT current_user").fetchone()[0] == name
    finally:
        with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
            admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))


def test_minio_init_hands_hostile_credentials_to_mc_intact(tmp_path):
    calls = tmp_path / "calls"
    (tmp_path / "mc").write_text(f"#!{sys.executable}\nimport json, os, sys\n"
                                 "open(os.environ['MC_CALLS'], 'a').write(json.dumps(sys.argv[1:]) + '\\n')\n")
    (tmp_path / "mc").chmod(0o755)
    command = [interpolated(part, DOTENV) for part in SERVICES["minio-init"]["entrypoint"]]
    env = {**container_env("minio-init", DOTENV), "PATH": f"{tmp_path}:{os.environ['PATH']}", "MC_CALLS": str(calls)}
    ran = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert ran.returncode == 0, ran.stderr
    assert [json.loads(line) for line in calls.read_text().splitlines()] == [
        ["alias", "set", "local", "http://minio:9000", DOTENV["MINIO_ROOT_USER"], DOTENV["MINIO_ROOT_PASSWORD"]],
        ["mb", "--ignore-existing", "local/telegram-albums"],
    ]


@pytest.mark.parametrize(("service", "ready_path"), [("qdrant", "/readyz"), ("neo4j", "/")])
def test_the_healthcheck_passes_on_http_200_and_fails_on_an_error_or_a_closed_port(service, ready_path):
    test = SERVICES[service]["healthcheck"]["test"]
    assert test[0] == "CMD"
    status = {"code": 200}

    class Server(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the handler's protocol
            self.send_response(status["code"] if self.path == ready_path else 404)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Server)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    command = [re.sub(r"/dev/tcp/127\.0\.0\.1/\d+", f"/dev/tcp/127.0.0.1/{server.server_port}", part)
               for part in test[1:]]

    def healthy() -> bool:
        return subprocess.run(command, capture_output=True, timeout=30).returncode == 0

    try:
        assert healthy()
        status["code"] = 503
        assert not healthy()
    finally:
        server.shutdown()
        server.server_close()
    assert not healthy()
