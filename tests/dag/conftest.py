"""The DagBag, and the pipeline's connections pointed at this test's own stores."""

import json
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from devtools.services import DAGS_FOLDER


@pytest.fixture(scope="session")
def dagbag(airflow_db):
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS_FOLDER))


REDIS_DB = 12


@dataclass
class Pipeline:
    expected: dict
    archive: Path
    qdrant_path: Path
    collection: str
    graph_name: str
    env: dict

    def with_settings(self, monkeypatch, **values) -> None:
        """The settings Variable with ``values`` changed, for this test."""
        settings = json.loads(self.env["AIRFLOW_VAR_TELEGRAM_ALBUMS_SETTINGS"])
        monkeypatch.setenv("AIRFLOW_VAR_TELEGRAM_ALBUMS_SETTINGS", json.dumps({**settings, **values}))


def use_archive(monkeypatch, *, archive: Path, expected: dict, pg, conn, s3_endpoint: str, bucket: str,
                tmp_path: Path, falkordb_port: int, **extra_env: str) -> Pipeline:
    """Register ``archive``'s channels and point the pipeline's connections and settings
    (``AIRFLOW_CONN_*``/``AIRFLOW_VAR_*``) at it and at this test's own database, bucket,
    Qdrant collection and graph."""
    from devtools.sample import register_sample
    from devtools.services import ensure_pools, pipeline_env

    register_sample(conn, expected)
    setup = Pipeline(expected=expected, archive=archive, qdrant_path=tmp_path / "qdrant",
                     collection=f"albums_{bucket}", graph_name=f"albums_{uuid.uuid4().hex[:10]}", env={})
    setup.env = pipeline_env(pg=pg, s3_endpoint=s3_endpoint, telegram_extra={"archive": str(archive)},
                             qdrant_path=setup.qdrant_path,
                             settings={"s3_bucket": bucket, "qdrant_collection": setup.collection},
                             redis=("127.0.0.1", 6379, REDIS_DB), falkordb_port=falkordb_port,
                             graph_name=setup.graph_name)
    for key, value in {**setup.env, **extra_env}.items():
        monkeypatch.setenv(key, value)
    ensure_pools()
    return setup


def forget_album_seen() -> None:
    """Drop the album_seen hints the test's runs left in the tests' Redis database."""
    import redis

    client = redis.Redis(host="127.0.0.1", port=6379, db=REDIS_DB)
    for key in client.scan_iter("album_seen:*"):
        client.delete(key)


@pytest.fixture
def pipeline(monkeypatch, airflow_db, pg, conn, s3_endpoint, bucket, archive_copy, tmp_path, falkordb_port):
    """Runs on a private copy of the sample archive (see ``use_archive``)."""
    path, expected = archive_copy
    setup = use_archive(monkeypatch, archive=path, expected=expected, pg=pg, conn=conn, s3_endpoint=s3_endpoint,
                        bucket=bucket, tmp_path=tmp_path, falkordb_port=falkordb_port)
    memoise_local_vision(monkeypatch)
    yield setup
    forget_album_seen()


_VISION_MEMO: dict[str, dict] = {}


def memoise_local_vision(monkeypatch) -> None:
    """Remember LocalVision's answer per image across the session: every DAG test analyses the
    same sample images, and OCR is the slow part. Each test's database still has its own vision
    cache, so vision calls are still counted per run (as tests/helpers.MemoVision does)."""
    import hashlib

    from include.album.providers.vision import LocalVision

    analyse = LocalVision.analyse

    def memoised(self, data: bytes) -> dict:
        key = hashlib.sha256(data).hexdigest()
        if key not in _VISION_MEMO:
            _VISION_MEMO[key] = analyse(self, data)  # UnusableImage propagates, uncached
        return dict(_VISION_MEMO[key])

    monkeypatch.setattr(LocalVision, "analyse", memoised)


class Stores:
    """Read access to the test's stores, opened only between runs (Qdrant local mode holds a lock)."""

    def __init__(self, pipeline, conn, s3_client, bucket, falkordb_port):
        from falkordb import FalkorDB

        from include.album.stores.graph import FalkorGraph

        self.pipeline, self.conn, self.s3, self.bucket = pipeline, conn, s3_client, bucket
        self.graph = FalkorGraph(FalkorDB(host="127.0.0.1", port=falkordb_port), pipeline.graph_name)

    def qdrant(self):
        from qdrant_client import QdrantClient

        return QdrantClient(path=str(self.pipeline.qdrant_path))

    def state(self) -> dict:
        from tests.helpers import store_state

        client = self.qdrant()
        try:
            return store_state(self.conn, self.s3, self.bucket, client, self.pipeline.collection, self.graph)
        finally:
            client.close()

    def points(self, ids: list[str]) -> dict[str, dict]:
        client = self.qdrant()
        try:
            return {str(p.id): p.payload for p in client.retrieve(self.pipeline.collection, ids, with_payload=True)}
        finally:
            client.close()

    def album(self, channel_id: int, grouped_id: int) -> dict:
        return self.conn.execute("SELECT * FROM media_groups WHERE channel_id = %s AND grouped_id = %s",
                                 (channel_id, grouped_id)).fetchone()


@pytest.fixture
def stores(pipeline, conn, s3_client, bucket, falkordb_port):
    found = Stores(pipeline, conn, s3_client, bucket, falkordb_port)
    yield found
    found.graph.graph.delete()
    found.graph.close()


def run_dag(dagbag, dag_id: str = "telegram_albums", **test_args):
    """``dag.test()``; returns (state, dag_run)."""
    dag_run = dagbag.get_dag(dag_id).test(**test_args)  # with its Deadline Alert (airflow_fixes.py)
    return getattr(dag_run.state, "value", dag_run.state), dag_run


def xcom(dag_run, task_id: str):
    """The return value of ``task_id`` in ``dag_run``."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = session.query(XComModel.value).filter(XComModel.run_id == dag_run.run_id, XComModel.task_id == task_id,
                                                     XComModel.key == "return_value").one()
    return XComModel.deserialize_value(row)
