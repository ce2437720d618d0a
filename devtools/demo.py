"""The README's first command: the whole DAG on the sample archive, embedded services only.

Every run starts from a clean state under ``.demo/`` (the embedded Postgres binaries stay),
so running it twice works and shows the same result.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

from devtools.sample import build_sample_archive, differences_from_expectation
from devtools.services import (
    DAGS_FOLDER,
    REPO,
    airflow_core_env,
    airflow_db_migrate,
    embedded_postgres,
    pipeline_env,
    recreate_database,
    start_falkordb,
    start_s3,
)
from include.album.stores import db

DEMO_DB = "telegram_albums_demo"


def run(state_dir: Path | None = None, archive: Path | None = None) -> int:
    """Run the DAG on the sample archive (default) or on ``archive``, from a clean state."""
    started = time.monotonic()
    state = Path(state_dir or REPO / ".demo")
    for stale in ("archive", "airflow", "qdrant", "falkordb"):
        shutil.rmtree(state / stale, ignore_errors=True)
    state.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("XDG_RUNTIME_DIR", str(state))  # pgserver wants one; containers often lack it

    print("• starting embedded Postgres and an S3 API server (moto) on loopback")
    pg_server, admin = embedded_postgres(state / "pg")
    recreate_database(admin.dsn, DEMO_DB)
    pg = type(admin)(host=admin.host, port=admin.port, user=admin.user, dbname=DEMO_DB)
    s3_server, s3_endpoint = start_s3()
    graph_server, graph_port = start_falkordb(state / "falkordb")
    from include.album.providers.vision import tesseract_available

    if not tesseract_available():
        print("  (tesseract is not installed: vision runs without OCR; "
              "apt-get install tesseract-ocr tesseract-ocr-rus tesseract-ocr-eng)")

    if archive is None:
        print("• building the sample archive")
        archive = state / "archive"
        expected = build_sample_archive(archive)
    else:
        archive = archive.resolve()
        print(f"• using the archive {archive}")
        expected_file = archive / "expected.json"
        expected = json.loads(expected_file.read_text(encoding="utf-8")) if expected_file.is_file() else None
    env = {
        **airflow_core_env(state / "airflow"),
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
        **pipeline_env(pg=pg, s3_endpoint=s3_endpoint, telegram_extra={"archive": str(archive)},
                       qdrant_path=state / "qdrant", falkordb_port=graph_port),
    }
    os.environ.update(env)

    print("• preparing the Airflow metadata DB (SQLite)")
    airflow_db_migrate(env)

    from devtools.sample import register_sample
    from devtools.services import ensure_pools
    from include.album.admin.channels import register_archive
    from include.album.source.archive import read_manifest

    with db.connect(pg.dsn) as conn:
        conn.autocommit = True
        db.apply_migrations(conn)
        if expected is not None and "tenants" in expected:
            register_sample(conn, expected)
        else:
            register_archive(conn, read_manifest(archive))
    ensure_pools()

    print("• running DAG telegram_albums with dag.test()")
    from airflow.dag_processing.dagbag import DagBag

    dag_run = DagBag(dag_folder=str(DAGS_FOLDER)).get_dag("telegram_albums").test()
    state_name = getattr(dag_run.state, "value", dag_run.state)

    from devtools.album_report import write_album_report
    from include.album.orchestration.connections import load_settings, media_store

    with db.connect(pg.dsn) as conn:
        counts = db.fetch_one(conn, "run_report", {"since": None})
        problems = differences_from_expectation(conn, expected) if expected else []
        albums = db.fetch_all(conn, "albums_with_items")
        report = write_album_report(conn, media_store(load_settings()), state / "report.html")
    s3_server.stop()
    graph_server.terminate()
    pg_server.cleanup()

    print(f"\nDAG run: {state_name}")
    print(json.dumps(counts, indent=2))
    for album in albums:
        summary = (album["meta"].get("enrichment") or {}).get("vision_summary") or ""
        print(f"  album {album['id']:>3}  @{album['username']:<13} {album['album_kind']:<8} "
              f"{album['items_count']} items  {album['status']:<9} caption={album['caption_text']!r}")
        print(f"             summary: {summary[:110]}")
    if problems:
        print("\nDIFFERS from the sample archive's expectation:")
        for problem in problems:
            print(f"  - {problem}")
    elif expected:
        print("\nStored posts and albums match the archive's expectation exactly.")
    print(f"\nAlbum report: {report}")
    print(f"Done in {time.monotonic() - started:.1f}s (state in {state})")
    assembled = all(album["status"] == "assembled" for album in albums)
    return 0 if state_name == "success" and not problems and assembled else 1
