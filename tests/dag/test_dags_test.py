"""The stock dev loop: ``airflow dags test`` of both DAGs exits 0, the Deadline Alert kept.

Airflow 3.3's ``dag.test()`` crashes at the end of a successful run of a DAG with a Deadline
Alert; ``include/album/orchestration/airflow_fixes.py`` has the root cause and the fix.
"""

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

    refresh = airflow_dags_test("telegram_albums_refresh", pipeline.env)
    assert refresh.returncode == 0, (refresh.stdout + refresh.stderr)[-3000:]


def test_the_airflow_bug_is_still_there_and_the_fix_handles_it(dagbag):
    """The day Airflow's in-memory copy carries stored alert ids, this fails: delete the fix."""
    from airflow.models import dagrun
    from airflow.serialization.serialized_objects import DagSerialization

    from include.album.orchestration.airflow_fixes import encoded_deadline

    dag = dagbag.get_dag("telegram_albums")
    copy = DagSerialization.deserialize_dag(DagSerialization.serialize_dag(dag))
    assert encoded_deadline(copy), "Airflow's dag.test() copy has stored alert ids now: remove airflow_fixes"
    assert getattr(dagrun.get_or_create_dagrun, "telegram_albums_fix", False)  # installed at DAG parse
