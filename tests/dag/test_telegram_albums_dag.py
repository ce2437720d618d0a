"""telegram_albums end to end with dag.test() on the sample archive (real Postgres, moto S3)."""

import pytest

from include.album import db
from include.album.channels import register_sample
from include.album.localenv import ensure_pool, pipeline_env
from include.album.sample import differences_from_expectation
from tests.helpers import s3_keys, snapshot

pytestmark = [pytest.mark.dag, pytest.mark.integration]


@pytest.fixture
def pipeline(monkeypatch, airflow_db, pg, conn, s3_endpoint, bucket, sample_archive):
    path, expected = sample_archive
    register_sample(conn, expected)
    env = pipeline_env(pg=pg, s3_endpoint=s3_endpoint, telegram_extra={"archive": str(path)},
                       settings={"s3_bucket": bucket})
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    ensure_pool("telegram", 1, "one Telegram session at a time")
    return expected


def run_dag(dagbag):
    dag = dagbag.get_dag("telegram_albums")
    dag_run = dag.test()
    return getattr(dag_run.state, "value", dag_run.state), dag_run


def mapped_labels(dag_run) -> list[str]:
    from airflow.models import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = session.query(TaskInstance.rendered_map_index).filter(
            TaskInstance.run_id == dag_run.run_id, TaskInstance.task_id == "ingest").all()
    return sorted(r[0] for r in rows)


def test_dag_ingests_the_sample_archive_exactly_and_a_rerun_changes_nothing(dagbag, pipeline, conn, s3_client,
                                                                           bucket):
    state, dag_run = run_dag(dagbag)
    assert state == "success"
    assert differences_from_expectation(conn, pipeline) == []
    assert mapped_labels(dag_run) == ["@album_lab", "@mixed_media", "@novosti_test"]
    first, keys = snapshot(conn), s3_keys(s3_client, bucket)
    assert len(keys) == first["counts"]["media_objects"] > 0

    state, _ = run_dag(dagbag)
    assert state == "success"
    assert snapshot(conn) == first
    assert s3_keys(s3_client, bucket) == keys
    assert db.fetch_one(conn, "run_report", {"album_ids": []})["albums"] == len(pipeline["albums"])
