"""``python -m include.album reindex`` after real runs of the DAG: the collection it rebuilds from
Postgres and S3 equals the DAG's point for point, and switching the DAG to a new collection
(reindex, switch the setting, reindex again to catch up) loses no point written meanwhile."""

from datetime import timedelta

import numpy as np
import pytest
from qdrant_client import QdrantClient

from devtools.archive_edits import append_messages
from devtools.sample import LAB, NEWS, SAMPLE_END, photo_message, render_text_image, text_message
from include.album.admin.cli import main
from tests.dag.conftest import run_dag

pytestmark = pytest.mark.dag


def points(pipeline, collection: str) -> dict[str, tuple[dict, list[float], dict]]:
    """Point id -> (payload, dense vector or [] (a point without text has none), lexical vector
    as {index: value}) of a collection."""
    client = QdrantClient(path=str(pipeline.qdrant_path))
    try:
        found, offset = {}, None
        while True:
            page, offset = client.scroll(collection, limit=256, offset=offset, with_payload=True, with_vectors=True)
            for p in page:
                lexical = p.vector.get("lexical")
                found[str(p.id)] = (p.payload, p.vector.get("dense", []),
                                    dict(zip(lexical.indices, lexical.values, strict=True)) if lexical else {})
            if offset is None:
                return found
    finally:
        client.close()


def assert_same(left: dict, right: dict) -> None:
    assert sorted(left) == sorted(right)
    for point_id, (payload, dense, lexical) in left.items():
        other = right[point_id]
        assert payload == other[0], point_id
        assert len(dense) == len(other[1]) and np.allclose(dense, other[1], atol=1e-6), point_id
        assert lexical.keys() == other[2].keys() and np.allclose(
            [lexical[k] for k in sorted(lexical)], [other[2][k] for k in sorted(lexical)]), point_id


def reindex(pipeline, capsys, *args: str) -> str:
    capsys.readouterr()
    assert main(["reindex", *args]) == 0
    return capsys.readouterr().out


def set_collection(monkeypatch, pipeline, collection: str) -> None:
    pipeline.with_settings(monkeypatch, qdrant_collection=collection)


def post_new_messages(archive, first_id: int, minutes: int) -> None:
    """A two-photo album and a text post in Album Lab, after the sample's span."""
    date = SAMPLE_END + timedelta(minutes=minutes)
    messages = []
    for n in range(2):
        data = render_text_image([f"Night market {first_id}", f"stall {n}"])
        message, photo_id = photo_message(LAB, first_id + n, date, "Ночной рынок на набережной" if n == 0 else "",
                                          data, grouped_id=9100 + first_id)
        (archive / "media" / str(photo_id)).write_bytes(data)
        messages.append(message)
    messages.append(text_message(LAB, first_id + 2, date, f"Расписание на неделю, выпуск {first_id}"))
    append_messages(archive, LAB, messages)


def test_reindex_rebuilds_the_dags_collection_point_for_point(pipeline, dagbag, capsys):
    state, _ = run_dag(dagbag)
    assert state == "success"
    out = reindex(pipeline, capsys, "--collection", "rebuilt")
    assert "a full pass" in out and "reindex into rebuilt done" in out
    dag_points = points(pipeline, pipeline.collection)
    assert len(dag_points) > 20
    assert_same(points(pipeline, "rebuilt"), dag_points)

    again = reindex(pipeline, capsys, "--collection", "rebuilt")  # nothing indexed since: nothing to write
    assert "catching up" in again and "0 albums and 0 posts outside albums written" in again
    assert_same(points(pipeline, "rebuilt"), dag_points)


def test_switching_the_dag_to_a_new_collection_loses_no_point(pipeline, dagbag, monkeypatch, capsys):
    state, _ = run_dag(dagbag)
    assert state == "success"
    reindex(pipeline, capsys, "--collection", "next")           # 1. the new collection, the DAG still on the old
    post_new_messages(pipeline.archive, 500, minutes=60)
    state, _ = run_dag(dagbag)                                    # 2. a run writes the old collection meanwhile
    assert state == "success"
    set_collection(monkeypatch, pipeline, "next")                 # 3. the switch
    caught_up = reindex(pipeline, capsys, "--collection", "next")  # 4. the catch-up
    assert "catching up" in caught_up and "1 albums and 1 posts outside albums written" in caught_up
    post_new_messages(pipeline.archive, 600, minutes=120)
    state, _ = run_dag(dagbag)                                    # 5. runs write the new collection
    assert state == "success"

    switched = points(pipeline, "next")
    old = points(pipeline, pipeline.collection)
    assert set(old) < set(switched)  # every point of the old collection, and those written since the switch
    reindex(pipeline, capsys, "--collection", "fresh", "--full")
    assert_same(switched, points(pipeline, "fresh"))             # and each as a full rebuild writes it


def test_reindex_of_one_tenant_and_its_mistakes(pipeline, dagbag, capsys):
    state, _ = run_dag(dagbag)
    assert state == "success"
    out = reindex(pipeline, capsys, "--collection", "globex_only", "--tenant", "globex")
    assert "tenant globex" in out
    channels = {payload["channel_id"] for payload, _, _ in points(pipeline, "globex_only").values()}
    assert NEWS in channels and LAB not in channels  # Album Lab is acme's only
    assert main(["reindex", "--tenant", "nobody"]) == 2
    assert capsys.readouterr().err.startswith("error: no tenant 'nobody'")
