"""The README's first command: the whole DAG on the sample archive, embedded services only.

Every run starts from a clean state under ``.demo/`` (the embedded Postgres binaries stay),
so running it twice works and shows the same result. Every service it starts is stopped when
it ends, failing or not; ``python -m devtools up`` starts them again over the demo's data and
prints the environment that ``python -m include.album`` and ``airflow dags test`` need.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from devtools.sample import build_sample_archive, differences_from_expectation
from devtools.services import (
    DAGS_FOLDER,
    REPO,
    PgTarget,
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
DEMO_TENANT = "acme"


class DemoError(ValueError):
    """The demo cannot go on for a reason the user can fix; the message says which."""


@dataclass(frozen=True)
class Services:
    pg: PgTarget
    env: dict[str, str]  # Airflow's home and the pipeline's connections, as environment variables


@contextmanager
def services(state: Path, archive: Path, *, fresh_database: bool) -> Iterator[Services]:
    """The demo's embedded Postgres (its data in ``state/pg``), moto's S3 API and FalkorDB, and
    the environment pointing Airflow and the pipeline at them; all stopped on leaving, failing or not."""
    runtime = state / "run"  # pgserver wants an XDG_RUNTIME_DIR (private to its user); containers often lack one
    runtime.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.environ.setdefault("XDG_RUNTIME_DIR", str(runtime))
    with ExitStack() as stack:
        pg_server, admin = embedded_postgres(state / "pg")
        stack.callback(pg_server.cleanup)
        if fresh_database:
            recreate_database(admin.dsn, DEMO_DB)
        pg = PgTarget(host=admin.host, port=admin.port, user=admin.user, dbname=DEMO_DB)
        s3_server, s3_endpoint = start_s3()
        stack.callback(s3_server.stop)
        graph_server, graph_port = start_falkordb(state / "falkordb")
        stack.callback(_stop, graph_server)
        env = {
            **airflow_core_env(state / "airflow"),
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
            "ALBUMS_DB_DSN": pg.dsn,
            **pipeline_env(pg=pg, s3_endpoint=s3_endpoint, telegram_extra={"archive": str(archive)},
                           qdrant_path=state / "qdrant", falkordb_port=graph_port),
        }
        if not fresh_database:
            restore_bucket(_media_store(env), state / S3_SNAPSHOT)
        yield Services(pg=pg, env=env)


# moto keeps nothing: the demo copies its bucket here when it ends, and ``up`` puts it back.
S3_SNAPSHOT = "s3"


def _media_store(env: dict[str, str]):
    """The pipeline's S3 store, as the connections in ``env`` define it."""
    from include.album.orchestration.connections import load_settings, media_store

    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    try:
        return media_store(load_settings())
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def save_bucket(store, directory: Path) -> int:
    """Every object of ``store``'s bucket as a file under ``directory`` (its content type in
    ``directory/content-types.json``); returns how many."""
    shutil.rmtree(directory, ignore_errors=True)
    types = {}
    for page in store.s3.get_paginator("list_objects_v2").paginate(Bucket=store.bucket):
        for item in page.get("Contents", []):
            found = store.s3.get_object(Bucket=store.bucket, Key=item["Key"])
            target = directory / "objects" / item["Key"]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(found["Body"].read())
            types[item["Key"]] = found.get("ContentType") or "application/octet-stream"
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "content-types.json").write_text(json.dumps(types, indent=0, sort_keys=True), encoding="utf-8")
    return len(types)


def restore_bucket(store, directory: Path) -> int:
    """Put back what ``save_bucket`` saved (nothing if it saved nothing); returns how many."""
    index = directory / "content-types.json"
    if not index.is_file():
        return 0
    store.ensure_bucket()
    types = json.loads(index.read_text(encoding="utf-8"))
    for key, content_type in types.items():
        store.s3.put_object(Bucket=store.bucket, Key=key, Body=(directory / "objects" / key).read_bytes(),
                            ContentType=content_type)
    return len(types)


def _stop(process) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except Exception:  # noqa: BLE001 - still running after 10 s: it goes anyway
        process.kill()


def _archive(state: Path, archive: Path | None) -> tuple[Path, dict | None]:
    """The archive to run on and its expectation; one that cannot be read fails before anything starts."""
    from include.album.source.archive import read_manifest

    if archive is None:
        print("• building the sample archive")
        return state / "archive", build_sample_archive(state / "archive")
    archive = archive.resolve()
    read_manifest(archive)  # ArchiveError naming the path
    print(f"• using the archive {archive}")
    expected_file = archive / "expected.json"
    if not expected_file.is_file():
        return archive, None
    try:
        return archive, json.loads(expected_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DemoError(f"{expected_file} cannot be read ({exc}): fix it or remove it") from None


def run(state_dir: Path | None = None, archive: Path | None = None) -> int:
    """Run the DAG on the sample archive (default) or on ``archive``, from a clean state."""
    started = time.monotonic()
    state = Path(state_dir or REPO / ".demo")
    for stale in ("archive", "airflow", "qdrant", "falkordb", S3_SNAPSHOT):
        shutil.rmtree(state / stale, ignore_errors=True)
    state.mkdir(parents=True, exist_ok=True)
    from include.album.providers.vision import tesseract_available

    archive, expected = _archive(state, archive)
    if not tesseract_available():
        print("  (tesseract is not installed: vision runs without OCR; "
              "apt-get install tesseract-ocr tesseract-ocr-rus tesseract-ocr-eng)")
    print("• starting embedded Postgres, an S3 API server (moto) and FalkorDB on loopback")
    with services(state, archive, fresh_database=True) as running:
        os.environ.update(running.env)
        print("• preparing the Airflow metadata DB (SQLite)")
        airflow_db_migrate(running.env)
        _register(running.pg, archive, expected)
        print("• running DAG telegram_albums with dag.test() (Redis is optional: without albums_redis, "
              "Postgres alone decides what is new)")
        dag_run = _telegram_albums_dag().test()
        state_name = getattr(dag_run.state, "value", dag_run.state)
        counts, problems, albums, report = _results(running.pg, expected, state)

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
    print(f"Done in {time.monotonic() - started:.1f}s (state in {state}; every service stopped)")
    print("\nTo look at this data again, start the demo's services over it, in this checkout with its venv "
          "active (. .venv/bin/activate); Ctrl-C stops them:\n"
          f"  {_command('up', state)}\n"
          "It prints the exports for another shell, where these work as they are:\n"
          + "".join(f"  {line}\n" for line in follow_up_commands()))
    assembled = all(album["status"] == "assembled" for album in albums)
    return 0 if state_name == "success" and not problems and assembled else 1


def _command(name: str, state: Path) -> str:
    default = state.resolve() == (REPO / ".demo").resolve()
    return f"python -m devtools {name}" + ("" if default else f" --state-dir {shlex.quote(str(state))}")


def follow_up_commands() -> list[str]:
    """Commands that reach the demo's data once ``up``'s exports are set."""
    return ["python -m include.album channels list",
            "python -m include.album quarantine list",
            f'python -m include.album search "Album Lab" --tenant {DEMO_TENANT}',
            f"python -m include.album browse --tenant {DEMO_TENANT} --kind album",
            "airflow dags test telegram_albums"]


def _register(pg: PgTarget, archive: Path, expected: dict | None) -> None:
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


def _telegram_albums_dag():
    from airflow.dag_processing.dagbag import DagBag

    dagbag = DagBag(dag_folder=str(DAGS_FOLDER))
    dag = dagbag.get_dag("telegram_albums")
    if dag is None:
        first = next(iter(dagbag.import_errors.values()), "it is not in the DAG folder").strip().splitlines()[-1]
        raise DemoError(f"DAG telegram_albums did not load ({first}): `airflow dags list-import-errors` says more")
    return dag


def _results(pg: PgTarget, expected: dict | None, state: Path) -> tuple[dict, list[str], list[dict], Path]:
    from devtools.album_report import write_album_report
    from include.album.orchestration.connections import load_settings, media_store

    with db.connect(pg.dsn) as conn:
        counts = db.fetch_one(conn, "run_report", {"since": None})
        problems = differences_from_expectation(conn, expected) if expected else []
        albums = db.fetch_all(conn, "albums_with_items")
        store = media_store(load_settings())
        report = write_album_report(conn, store, state / "report.html")
    save_bucket(store, state / S3_SNAPSHOT)
    return counts, problems, albums, report


def demo_state(state_dir: Path | None, command: str) -> Path:
    """The demo's state directory, which a finished demo must have filled."""
    state = Path(state_dir or REPO / ".demo")
    if not (state / "pg").is_dir() or not (state / "archive").is_dir():
        raise DemoError(f"{state} holds no demo data for `{command}`: run `{_command('demo', state)}` first")
    return state


def up(state_dir: Path | None = None) -> int:
    """The demo's services over its data, until Ctrl-C (or SIGTERM): prints the exports that
    ``python -m include.album`` and ``airflow dags test`` need, and commands that work with them."""
    state = demo_state(state_dir, "up")
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    with services(state, state / "archive", fresh_database=False) as running:
        print("# the demo's Postgres, an S3 API (with the media the demo stored) and FalkorDB are up; in another "
              "shell:")
        for name, value in sorted(running.env.items()):
            print(f"export {name}={shlex.quote(value)}")
        print("# then, for example:")
        for line in follow_up_commands():
            print(f"#   {line}")
        print("# Ctrl-C here stops the services.", flush=True)
        stop.wait()
    print("services stopped")
    return 0
