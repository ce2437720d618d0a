"""The local Airflow stack's settings (no process is started here)."""

from pathlib import Path

from devtools.airflow_stack import WORKER_NAME_ENV, celery_env, stack_env, worker_name


def test_stack_env_points_airflow_at_the_metadata_db_by_tcp_or_socket_directory(tmp_path):
    tcp = stack_env(tmp_path, meta_dsn="host=127.0.0.1 port=5432 user=postgres dbname=meta", api_port=8123,
                    base={"PATH": "/bin", "AIRFLOW__CORE__EXECUTOR": "leaked", "PYTEST_CURRENT_TEST": "x"})
    assert tcp["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == \
        "postgresql+psycopg://postgres@/meta?host=127.0.0.1&port=5432"
    assert tcp["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor" and "PYTEST_CURRENT_TEST" not in tcp
    assert tcp["PATH"] == "/bin" and tcp["AIRFLOW_HOME"] == str(tmp_path)
    assert tcp["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://127.0.0.1:8123/execution/"
    assert tcp["AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL"] == "1"  # measured: 5 s costs ~5 s per task
    assert tcp["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"] == "admin:admin,viewer:viewer"  # real sign-in, no all-admins
    assert "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS" not in tcp
    socket_dir = stack_env(Path("/x"), meta_dsn="host=/run/pg port=5433 user=me dbname=m", api_port=1, base={})
    assert socket_dir["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == "postgresql+psycopg://me@/m?host=/run/pg&port=5433"


def test_celery_env_uses_the_broker_and_a_postgres_result_backend():
    env = celery_env(broker_url="redis://127.0.0.1:6379/9", result_backend_dsn="host=h port=1 user=u dbname=d",
                     heartbeat_timeout=15)
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert env["AIRFLOW__CELERY__BROKER_URL"] == "redis://127.0.0.1:6379/9"
    assert env["AIRFLOW__CELERY__RESULT_BACKEND"] == "db+postgresql+psycopg://u@/d?host=h&port=1"
    assert env["AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT"] == "15"
    assert int(env["AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__VISIBILITY_TIMEOUT"]) > 3600  # > longest task


def test_worker_name_is_the_one_given_else_the_host(monkeypatch):
    monkeypatch.setenv(WORKER_NAME_ENV, "worker-vision")
    assert worker_name() == "worker-vision"
    monkeypatch.delenv(WORKER_NAME_ENV)
    assert worker_name()
