"""telegram_albums end to end with dag.test() on the sample archive (real Postgres, moto S3, Redis)."""

import json

import pytest

from devtools.sample import differences_from_expectation
from include.album.stores import db
from tests.dag.conftest import run_dag
from tests.helpers import s3_keys, snapshot

pytestmark = [pytest.mark.dag, pytest.mark.integration]

def rendered_labels(dag_run, task_id: str) -> list[str]:
    from airflow.models import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = session.query(TaskInstance.rendered_map_index).filter(
            TaskInstance.run_id == dag_run.run_id, TaskInstance.task_id == task_id).all()
    return sorted(r[0] for r in rows)


def asset_events(name: str, run_id: str) -> list[dict]:
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = session.query(AssetEvent.extra).join(AssetModel, AssetEvent.asset_id == AssetModel.id).filter(
            AssetModel.name == name, AssetEvent.source_run_id == run_id).all()
    return [r[0] for r in rows]


def stores(conn, s3_client, bucket) -> dict:
    objects = {k: s3_client.get_object(Bucket=bucket, Key=k)["Body"].read() for k in s3_keys(s3_client, bucket)}
    groups = conn.execute("SELECT id, status, meta, content_hash, updated_at FROM media_groups ORDER BY id").fetchall()
    vision = conn.execute("SELECT sha256, provider_key, analyzed_at FROM vision_results ORDER BY 1, 2").fetchall()
    return {"s3": objects, "groups": groups, "vision": vision, "rows": snapshot(conn)}


def test_dag_ingests_assembles_and_a_rerun_changes_nothing(dagbag, pipeline, conn, s3_client, bucket, caplog):
    state, dag_run = run_dag(dagbag)
    assert state == "success"
    assert differences_from_expectation(conn, pipeline.expected) == []
    assert rendered_labels(dag_run, "ingest") == ["@album_lab", "@mixed_media", "@novosti_test"]
    albums = db.fetch_all(conn, "albums_with_items")
    assert rendered_labels(dag_run, "album.vision") == sorted(f"@{a['username']} album {a['id']}" for a in albums)
    assert {a["status"] for a in albums} == {"assembled"}

    subscriptions = {(t, c) for t, cs in pipeline.expected["tenants"].items() for c in cs}
    summaries = sorted(k for k in s3_keys(s3_client, bucket) if k.startswith("album/"))
    assert summaries == sorted(f"album/{t}/{a['id']}_vision_summary_v1.json"
                               for a in albums for t, c in subscriptions if c == a["channel_id"])
    for album in albums:
        for tenant, key in album["meta"]["enrichment"]["s3_keys"].items():
            document = json.loads(s3_client.get_object(Bucket=bucket, Key=key)["Body"].read())
            assert document["vision_summary"] == album["meta"]["enrichment"]["vision_summary"]
            assert document["tenant_id"] == tenant and document["album_id"] == album["id"]
    report = db.fetch_one(conn, "run_report", {"since": None})
    assert report["vision_calls"] > 0

    assembled = [e for e in asset_events("album.assembled", dag_run.run_id) if e.get("album_ids")]
    assert sorted(i for e in assembled for i in e["album_ids"]) == [a["id"] for a in albums]
    parsed = asset_events("albums.parsed", dag_run.run_id)
    assert sorted(c for e in parsed for c in e["channel_ids"]) == sorted(c["id"] for c in pipeline.expected["channels"])

    before = stores(conn, s3_client, bucket)
    caplog.clear()
    state, rerun = run_dag(dagbag)
    assert state == "success"
    assert stores(conn, s3_client, bucket) == before  # byte for byte, timestamps included
    assert db.fetch_one(conn, "run_report", {"since": rerun.start_date})["vision_calls"] == 0
    # Nothing new on Telegram: no channel pulled, and neither Qdrant nor the model opened for posts.
    assert rendered_labels(rerun, "ingest") == [None]  # the one placeholder of an empty mapping
    assert any("Qdrant and the graph not opened" in r.getMessage() for r in caplog.records)


def test_albums_beyond_the_per_album_mapping_are_processed_in_batches(dagbag, pipeline, conn, monkeypatch, bucket):
    monkeypatch.setenv("AIRFLOW_VAR_TELEGRAM_ALBUMS_SETTINGS",
                       json.dumps({"s3_bucket": bucket, "albums_mapped_per_run": 4,
                                   "qdrant_collection": pipeline.collection}))
    state, dag_run = run_dag(dagbag)
    assert state == "success"
    albums = db.fetch_all(conn, "albums_with_items")
    assert len(albums) == 7 and {a["status"] for a in albums} == {"assembled"}
    labels = rendered_labels(dag_run, "album.enrich")
    assert len(labels) == 4  # seven albums in four units: 2, 2, 2, 1
    assert f"2 albums {albums[0]['id']}, {albums[1]['id']}" in labels
    assert f"2 albums {albums[4]['id']}, {albums[5]['id']}" in labels
    assert f"@{albums[6]['username']} album {albums[6]['id']}" in labels  # a unit of one reads as its album
