"""The stock dev loop: ``airflow dags test`` of both DAGs exits 0, the Deadline Alert kept.

Airflow 3.3's ``dag.test()`` crashes at the end of a successful run of a DAG with a Deadline
Alert; ``include/album/orchestration/airflow_fixes.py`` has the root cause and the fix.
"""

import inspect
import subprocess
import sys
from pathlib import Path

from devtools.sample import differences_from_expectation

AIRFLOW = str(Path(sys.executable).parent / "airflow")


def airflow_dags_test(dag_id: str, env: dict) -> subprocess.CompletedProcess:
    import os

    return subprocess.run([AIRFLOW, "dags", "test", dag_id, "2026-01-05"], env={**os.environ, **env},
                          capture_output=True, text=True, timeout=900)


def stored_deadline_alerts(dag_id: str) -> int:
    from airflow.models.deadline_alert import DeadlineAlert
    from airflow.models.serialized_dag import SerializedDagModel
    from airflow.utils.session import create_session
    from sqlalchemy import func, select

    with create_session() as session:
        return session.scalar(select(func.count()).select_from(DeadlineAlert).join(
            SerializedDagModel, SerializedDagModel.id == DeadlineAlert.serialized_dag_id).where(
            SerializedDagModel.dag_id == dag_id))


def test_airflow_dags_test_runs_the_sample_and_exits_0_with_the_deadline_alert_registered(pipeline, conn):
    done = airflow_dags_test("telegram_albums", pipeline.env)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    assert "'dict' object has no attribute 'hex'" not in done.stdout + done.stderr
    assert differences_from_expectation(conn, pipeline.expected) == []
    assert stored_deadline_alerts("telegram_albums") == 1  # scheduled runs still get their deadline
    summary = done.stdout.strip().splitlines()[-1]  # what the run did, last
    posts = conn.execute("SELECT count(*) AS n FROM posts").fetchone()["n"]
    assert summary.startswith(f"telegram_albums: {posts} new posts from 3 of 3 channels; "), summary

    refresh = airflow_dags_test("telegram_albums_refresh", pipeline.env)
    assert refresh.returncode == 0, (refresh.stdout + refresh.stderr)[-3000:]


def test_airflow_dags_test_on_an_empty_database_says_no_channel_is_registered(airflow_db, pg, s3_endpoint, bucket,
                                                                                 sample_archive, tmp_path):
    from devtools.services import ensure_pools, pipeline_env

    ensure_pools()
    env = pipeline_env(pg=pg, s3_endpoint=s3_endpoint, telegram_extra={"archive": str(sample_archive[0])},
                       qdrant_path=tmp_path / "qdrant", settings={"s3_bucket": bucket})
    done = airflow_dags_test("telegram_albums", env)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    assert done.stdout.strip().splitlines()[-1] == (
        "telegram_albums: no channels registered: add one with `python -m include.album channels add @USERNAME "
        "--tenant TENANT` (README, \"CLI\")")


def test_the_airflow_bug_is_still_there_and_the_fix_handles_it(dagbag):
    """The day Airflow's in-memory copy carries stored alert ids, this fails: delete the fix."""
    from airflow.models import dagrun
    from airflow.serialization.serialized_objects import DagSerialization

    from include.album.orchestration.airflow_fixes import encoded_deadline

    dag = dagbag.get_dag("telegram_albums")
    copy = DagSerialization.deserialize_dag(DagSerialization.serialize_dag(dag))
    assert encoded_deadline(copy), "Airflow's dag.test() copy has stored alert ids now: remove airflow_fixes"
    assert inspect.unwrap(dag.test) is type(dag).test  # the DAG's own test() carries the fix
    assert dagrun.get_or_create_dagrun.__module__ == "airflow.models.dagrun"  # nothing else is patched


def test_a_scheduler_like_process_parsing_the_dags_runs_airflow_unpatched(tmp_path):
    """What a scheduler or DAG processor does: import Airflow's models, then parse the DAG files.
    ``get_or_create_dagrun`` stays Airflow's own (the fix lives inside ``telegram_albums.test()``)."""
    from devtools.services import DAGS_FOLDER

    script = ("import airflow.models.dagrun as dagrun\n"
              "original = dagrun.get_or_create_dagrun\n"
              "from airflow.dag_processing.dagbag import DagBag\n"
              f"bag = DagBag(dag_folder={str(DAGS_FOLDER)!r})\n"
              "assert not bag.import_errors, bag.import_errors\n"
              "assert 'telegram_albums' in bag.dag_ids\n"
              "print(dagrun.get_or_create_dagrun is original)\n")
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300,
                          cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "True"
