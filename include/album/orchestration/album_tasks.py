"""The bodies of the album task group's tasks (``dag_parts.process_albums``), shared by both
pulling DAGs: each step over a unit of albums, each album on its own (``steps.quarantine``),
and a record of which run's task touched which album (``album_runs``, read by the albums view).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from include.album.domain.lifecycle import Album, AlbumStep, StepOutcome, check_outcome
from include.album.domain.settings import Settings
from include.album.domain.units import unit_label
from include.album.orchestration.connections import (
    albums_db,
    load_settings,
    media_store,
    open_indexer,
    redis_client,
    vision_provider,
)
from include.album.orchestration.runtime import last_try, task_body
from include.album.providers.vision import VisionProvider
from include.album.steps import metrics
from include.album.steps.assembly import AlbumSeen, analyse_album, enrich_album, load_album, summarize_album
from include.album.steps.quarantine import is_transient, run_guarded, settle
from include.album.stores import db
from include.album.stores.media import MediaStore

if TYPE_CHECKING:
    import psycopg
    from airflow.sdk import Asset

    from include.album.steps.indexing import AlbumIndexer

log = logging.getLogger(__name__)


@task_body
def album_step(album_ids: list[int], context: dict[str, Any], step: AlbumStep,
               outlet: Asset | None = None) -> list[int]:
    """Run one step for a unit of albums; returns the unit.

    Albums tombstoned or quarantined meanwhile are passed over. One album failing does not
    stop the others: see ``quarantine`` for retries and quarantine.
    """
    settings = load_settings()
    with albums_db(settings) as conn:
        albums = [load_album(conn, album_id) for album_id in album_ids]
        context["album_label"] = unit_label([albums[0].label] if len(albums) == 1 else list(map(str, album_ids)),
                                            "albums")
        outcomes: dict[int, StepOutcome] = {}
        for album in albums:
            if album.passed_over:
                log.info("%s is %s; skipped", album.label, album.passed_over)
                outcomes[album.id] = album.passed_over
        live = [a for a in albums if a.is_live]
        if step is AlbumStep.INDEX:
            outcomes |= index_albums(conn, settings, live, context)
        else:
            outcomes |= assembly_step(conn, settings, live, step, context)
        record_runs(conn, context, outcomes)
    if outlet is not None:
        published = [album_id for album_id, outcome in outcomes.items() if outcome is StepOutcome.PUBLISHED]
        context["outlet_events"][outlet].extra = {"album_ids": published}
    return album_ids


def assembly_step(conn: psycopg.Connection, settings: Settings, albums: Sequence[Album], step: AlbumStep,
                  context: Mapping[str, Any]) -> dict[int, StepOutcome]:
    """Vision, summary or enrich for each album; albums already assembled for their composition are unchanged."""
    tools = StepTools(conn, settings, AlbumSeen(redis_client(settings)), vision_provider(settings))
    run_step = ASSEMBLY_STEPS[step]

    def run(album: Album) -> StepOutcome:
        if album.is_assembled:
            log.info("%s already assembled for this composition; nothing to do", album.label)
            return StepOutcome.UNCHANGED
        try:
            return check_outcome(step, run_step(tools, album))
        except Exception:
            metrics.incr("albums_assembled_total", label="error")
            raise

    outcomes, failures = run_guarded(albums, step, run)
    settle(conn, step, failures, last_try=last_try(context))
    return outcomes


def record_runs(conn: psycopg.Connection, context: Mapping[str, Any], outcomes: Mapping[int, StepOutcome]) -> None:
    """Which run's task touched which album, and what it did (``album_runs``): the albums view's links."""
    ti, dag_run = context.get("ti"), context.get("dag_run")
    if not outcomes or ti is None or dag_run is None:
        return
    with conn.transaction():
        db.execute(conn, "album_run_record", {
            "dag_id": dag_run.dag_id, "run_id": dag_run.run_id, "task_id": ti.task_id,
            "map_index": ti.map_index if ti.map_index is not None else -1,
            "album_ids": list(outcomes), "outcomes": [str(o) for o in outcomes.values()]})


@dataclass
class StepTools:
    """What an assembly step needs, built once per task; the S3 client only if a step uses it."""

    conn: psycopg.Connection
    settings: Settings
    seen: AlbumSeen
    provider: VisionProvider

    @cached_property
    def store(self) -> MediaStore:
        return media_store(self.settings)


def _analyse(tools: StepTools, album: Album) -> StepOutcome:
    return analyse_album(tools.conn, tools.store, tools.provider, album)


def _summarize(tools: StepTools, album: Album) -> StepOutcome:
    timeout = timedelta(minutes=tools.settings.assembly_timeout_minutes)
    return summarize_album(tools.conn, album, tools.provider.key, timeout, datetime.now(UTC))


def _enrich(tools: StepTools, album: Album) -> StepOutcome:
    published = enrich_album(tools.conn, tools.store, tools.seen, album)
    return StepOutcome.PUBLISHED if published else StepOutcome.WAITING


# The assembly steps; the index step runs its albums in one batch (``index_albums``).
ASSEMBLY_STEPS: dict[AlbumStep, Callable[[StepTools, Album], StepOutcome]] = {
    AlbumStep.VISION: _analyse, AlbumStep.SUMMARY: _summarize, AlbumStep.ENRICH: _enrich}


def index_albums(conn: psycopg.Connection, settings: Settings, albums: Sequence[Album],
                 context: Mapping[str, Any]) -> dict[int, StepOutcome]:
    """Index the albums whose enrichment the index does not hold yet."""
    pending = [a for a in albums if a.ready_to_index]
    outcomes = {a.id: StepOutcome.UNCHANGED for a in albums if not a.ready_to_index}
    if pending:  # else skip loading the model and taking Qdrant's local-mode lock for nothing
        with open_indexer(conn, settings, vision_provider(settings).key) as indexer:
            failures = index_guarded(indexer, pending)
        settle(conn, AlbumStep.INDEX, failures, last_try=last_try(context))
        failed = {album.id for album, _ in failures}
        outcomes |= {a.id: StepOutcome.INDEXED for a in pending if a.id not in failed}
    return outcomes


def index_guarded(indexer: AlbumIndexer, albums: Sequence[Album]) -> list[tuple[Album, Exception]]:
    """Index the albums in one batch; if that fails for an album's sake, one by one to find which."""
    try:
        indexer.index(albums)
        return []
    except Exception as exc:
        if is_transient(exc):
            raise
        log.warning("indexing %d albums together failed (%s); indexing them one by one", len(albums), exc)
    _, failures = run_guarded(albums, AlbumStep.INDEX, lambda album: indexer.index([album]))
    return failures
