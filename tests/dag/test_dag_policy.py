"""Project policy, checked on every DAG: imports cleanly, documented, owned, tagged, retried."""

import pytest

pytestmark = pytest.mark.dag


def test_dags_import_without_errors(dagbag):
    assert dagbag.import_errors == {}
    assert "telegram_albums" in dagbag.dag_ids


def test_every_dag_is_documented_owned_tagged_and_retried(dagbag):
    for dag_id, dag in dagbag.dags.items():
        assert dag.doc_md and len(dag.doc_md) > 200, f"{dag_id} needs doc_md"
        assert dag.tags, f"{dag_id} needs tags"
        for task in dag.tasks:
            assert task.owner not in ("", "airflow"), f"{dag_id}.{task.task_id} needs a real owner"
            assert task.retries >= 1, f"{dag_id}.{task.task_id} needs retries"


def test_telegram_albums_schedule_and_limits(dagbag):
    from datetime import timedelta

    from airflow.sdk import CronTriggerTimetable

    dag = dagbag.get_dag("telegram_albums")
    assert isinstance(dag.timetable, CronTriggerTimetable)
    assert dag.timetable.interval == timedelta(minutes=5)
    assert dag.timetable.expression == "*/5 * * * *"
    assert dag.max_active_runs == 1
    ingest = dag.get_task("ingest")
    assert ingest.pool == "telegram"
    assert ingest.retry_exponential_backoff
