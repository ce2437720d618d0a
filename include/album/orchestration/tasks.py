"""The bodies of the DAG's tasks: each builds its clients from Airflow connections and calls
the plain-Python pipeline. The DAG file only wires these together.

Every body is ``@task_body``: a configuration error (a settings Variable of the wrong type, a
connection not defined, a Telegram session Telegram refuses) fails the task at once, without
retries, naming the cause and the fix. Outages still raise as they are, and retry.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from airflow.sdk.exceptions import AirflowFailException
from airflow.sdk.observability import stats

from include.album.domain.models import AlbumStep
from include.album.domain.settings import ConfigurationError, Settings
from include.album.domain.units import unit_label, work_units
from include.album.orchestration.connections import (
    albums_db,
    embedder,
    graph_backend,
    load_settings,
    media_store,
    qdrant_client,
    redis_client,
    telegram_client,
    vision_provider,
)
from include.album.providers.vision import VisionProvider
from include.album.steps import metrics
from include.album.steps.assembly import (
    Album,
    AlbumSeen,
    analyse_album,
    enrich_album,
    load_album,
    process_album,
    summarize_album,
    unchanged,
)
from include.album.steps.quarantine import is_transient, run_guarded, settle
from include.album.stores import db
from include.album.stores.media import MediaStore

# Every task process parses the DAG file, which imports this module: what only some tasks
# need (qdrant_client ~0.8 s, telethon ~0.4 s to import) is imported inside those tasks.
if TYPE_CHECKING:
    import psycopg
    from airflow.sdk import Asset

    from include.album.source.client import PipelineClient
    from include.album.source.pull import PullWindow
    from include.album.steps.indexing import AlbumIndexer

log = logging.getLogger(__name__)
metrics.send_to(stats)  # what the steps count goes out through Airflow's StatsD client
P = ParamSpec("P")
R = TypeVar("R")


def task_body(body: Callable[P, R]) -> Callable[P, R]:
    """Fail the task without retries on a ``ConfigurationError``: retrying cannot fix it."""

    @functools.wraps(body)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return body(*args, **kwargs)
        except ConfigurationError as exc:
            from include.album.source.failures import SessionUnusable  # (telethon: only on this path)

            if isinstance(exc, SessionUnusable):
                metrics.incr("telegram_session_unusable_total", label=exc.reason.lower())
            log.error("configuration error, not retried: %s", exc)
            raise AirflowFailException(str(exc)) from exc

    return run


@task_body
def migrate() -> list[str]:
    settings = load_settings()
    with albums_db(settings) as conn:
        applied = db.apply_migrations(conn)
    media_store(settings).ensure_bucket()
    log.info("schema up to date (%d migrations applied now)", len(applied))
    return applied


@task_body
def changed_channels(context: Mapping[str, Any]) -> list[list[int]]:
    """The channels this run pulls, as work units for the mapped ``ingest``: those Telegram says
    have messages above their mark (every channel in a backfill run; see ``ingest.find_changed_channels``)."""
    from include.album.steps.ingest import find_changed_channels

    settings = load_settings()
    window = pull_window(context)
    client = None if window is not None else telegram_client(settings, run_end=context.get("data_interval_end"))
    with albums_db(settings) as conn:
        try:
            channel_ids = find_changed_channels(conn, client, settings, window)
        finally:
            if client is not None:
                report_requests(client)
    units = work_units(channel_ids, settings.channels_mapped_per_run)
    log.info("%d channels to pull in %d mapped units", len(channel_ids), len(units))
    return units


@task_body
def channel_units() -> list[list[int]]:
    """Every subscribed channel, as work units (the refresh DAG re-reads them all)."""
    from include.album.steps.ingest import channels_to_pull

    settings = load_settings()
    with albums_db(settings) as conn:
        channels = channels_to_pull(conn, settings)
    log.info("%d subscribed channels: %s", len(channels), ", ".join(c.label for c in channels))
    return work_units([c.id for c in channels], settings.channels_mapped_per_run)


def report_requests(client: PipelineClient) -> None:
    """The Telegram requests a task made, by type: to its log and the metric ``telegram_requests_total``."""
    from include.album.source.client import request_kind

    for name, count in sorted(client.requests.items()):
        metrics.incr("telegram_requests_total", count, label=request_kind(name))
    log.info("Telegram requests: %s", ", ".join(f"{request_kind(n)} {c}" for n, c in sorted(client.requests.items()))
             or "none")


def pull_window(context: Mapping[str, Any]) -> PullWindow | None:
    """Backfill runs pull their data interval by date; other runs pull above the mark."""
    from include.album.source.pull import PullWindow

    dag_run = context["dag_run"]
    start, end = context.get("data_interval_start"), context.get("data_interval_end")
    run_type = getattr(dag_run, "run_type", None)
    if getattr(run_type, "value", run_type) == "backfill" and start and end:
        return PullWindow(start=start, end=end)
    return None


@task_body
def ingest(channel_ids: list[int], context: dict[str, Any], outlet: Asset | None = None) -> list[int]:
    """Pull a unit of channels over one Telegram connection; returns the albums new or changed."""
    from include.album.steps.ingest import ingest_channels, load_channels

    settings = load_settings()
    window = pull_window(context)
    with albums_db(settings) as conn:
        context["channel_label"] = unit_label([c.label for c in load_channels(conn, channel_ids)], "channels")
        client = telegram_client(settings, run_end=context.get("data_interval_end"))
        try:
            results = ingest_channels(conn, media_store(settings), client, channel_ids, settings, window=window)
        except Exception:
            metrics.incr("albums_parsed_total", label="error")
            raise
        finally:
            report_requests(client)
    album_ids = sorted({album_id for result in results for album_id in result.album_ids})
    failed = [r.channel_id for r in results if r.error]
    if failed:
        log.warning("%d of %d channels failed and are pulled again next run: %s", len(failed), len(results), failed)
    unavailable = [r.channel_id for r in results if r.unavailable]
    if unavailable:
        log.warning("%d of %d channels are unavailable and set aside: %s", len(unavailable), len(results),
                    unavailable)
    if outlet is not None:
        context["outlet_events"][outlet].extra = {"channel_ids": list(channel_ids), "album_ids": album_ids}
    return album_ids


def returned_ids(per_unit: Sequence[list[int] | None]) -> list[int]:
    """The ids a mapped task's units returned, as one sorted list.

    Indexed by length: iterating Airflow's lazy XCom sequence probes one past the end (a 404 log).
    """
    return sorted({i for n in range(len(per_unit)) for i in (per_unit[n] or [])})


@task_body
def albums_ready(per_unit: Sequence[list[int] | None]) -> list[list[int]]:
    """Albums to process this run, as work units for the mapped task group.

    The albums are the new or changed ones plus any still waiting or partial from earlier
    runs. Up to ``albums_mapped_per_run`` albums, each gets a unit of its own (one mapped group
    per album: visible and retryable per album in the UI); beyond it they are split into that
    many units of several albums, so however many albums a backfill brings, the run has a
    bounded number of task instances (Airflow's cost per task stays small against the work)
    and stays under ``max_map_length`` (1024).
    """
    settings = load_settings()
    album_ids = set(returned_ids(per_unit))
    with albums_db(settings) as conn:
        album_ids.update(r["id"] for r in db.fetch_all(conn, "albums_needing_work"))
    units = work_units(album_ids, settings.albums_mapped_per_run)
    log.info("%d albums to process in %d mapped units", len(album_ids), len(units))
    return units


def last_try(context: Mapping[str, Any]) -> bool:
    """True on the task's last try (no retry left): the moment to quarantine instead of raising."""
    ti = context.get("ti")
    return ti is None or ti.try_number > ti.max_tries


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
        for album in albums:
            if not album.is_live:
                log.info("%s is %s; skipped", album.label, "deleted" if album.deleted_at else "quarantined")
        albums = [a for a in albums if a.is_live]
        if step is AlbumStep.INDEX:
            index_albums(conn, settings, albums, context)
            return album_ids
        tools = StepTools(conn, settings, AlbumSeen(redis_client(settings)), vision_provider(settings))
        run_step = ASSEMBLY_STEPS[step]

        def run(album: Album) -> str:
            if unchanged(album, tools.seen):
                log.info("%s already assembled for this composition; nothing to do", album.label)
                return "unchanged"
            try:
                return run_step(tools, album)
            except Exception:
                metrics.incr("albums_assembled_total", label="error")
                raise

        outcomes, failures = run_guarded(albums, step, run)
        settle(conn, step, failures, last_try=last_try(context))
    if outlet is not None:
        published = [album_id for album_id, outcome in outcomes.items() if outcome == "published"]
        context["outlet_events"][outlet].extra = {"album_ids": published}
    return album_ids


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


def _analyse(tools: StepTools, album: Album) -> str:
    counts = analyse_album(tools.conn, tools.store, tools.provider, album)
    return "pending" if counts["pending"] else "done"


def _summarize(tools: StepTools, album: Album) -> str:
    timeout = timedelta(minutes=tools.settings.assembly_timeout_minutes)
    return summarize_album(tools.conn, album, tools.provider.key, timeout, datetime.now(UTC))


def _enrich(tools: StepTools, album: Album) -> str:
    return "published" if enrich_album(tools.conn, tools.store, tools.seen, album) else "waiting"


# The assembly steps; the index step runs its albums in one batch (``index_albums``).
ASSEMBLY_STEPS: dict[AlbumStep, Callable[[StepTools, Album], str]] = {
    AlbumStep.VISION: _analyse, AlbumStep.SUMMARY: _summarize, AlbumStep.ENRICH: _enrich}


def index_albums(conn: psycopg.Connection, settings: Settings, albums: Sequence[Album],
                 context: Mapping[str, Any]) -> None:
    """Index the albums whose enrichment the index does not hold yet."""
    pending = [a for a in albums if a.ready_to_index]
    if pending:  # else skip loading the model and taking Qdrant's local-mode lock for nothing
        with open_indexer(conn, settings, vision_provider(settings).key) as indexer:
            failures = index_guarded(indexer, pending)
        settle(conn, AlbumStep.INDEX, failures, last_try=last_try(context))


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


@contextmanager
def open_indexer(conn: psycopg.Connection, settings: Settings, provider_key: str) -> Iterator[AlbumIndexer]:
    """Qdrant + graph for one task; closed at the end (Qdrant local mode holds a file lock)."""
    from include.album.steps.indexing import AlbumIndexer
    from include.album.stores.qdrant import QdrantIndex

    client, graph = qdrant_client(settings), graph_backend(settings)
    try:
        qindex = QdrantIndex(client, settings.qdrant_collection, embedder(settings))
        qindex.ensure_collection()
        if graph is not None:
            graph.ensure_schema()
        yield AlbumIndexer(conn, qindex, graph, provider_key)
    finally:
        client.close()
        if graph is not None:
            graph.close()


@task_body
def index_posts() -> dict[str, int]:
    """Index the posts outside albums that are new or changed; unpublish what was deleted."""
    from include.album.steps.indexing import index_loose_posts, loose_work_pending, remove_deleted

    settings = load_settings()
    with albums_db(settings) as conn:
        follow_renames_in_graph(conn, settings)
        if not loose_work_pending(conn):
            log.info("no post to index and nothing deleted to unpublish; Qdrant and the graph not opened")
            return {"posts": 0, "points": 0, "posts_removed": 0, "albums_removed": 0}
        provider = vision_provider(settings)
        store = media_store(settings)
        with open_indexer(conn, settings, provider.key) as indexer:
            counts = index_loose_posts(conn, store, provider, indexer.qindex)
            counts.update(remove_deleted(conn, store, indexer.qindex, indexer.graph))
    return counts


def follow_renames_in_graph(conn: psycopg.Connection, settings: Settings) -> None:
    """Channels renamed on Telegram get their new names in the graph; the graph is opened only then."""
    from include.album.steps.indexing import sync_renamed_channels

    if not db.fetch_all(conn, "channels_renamed", {"limit": 1}):
        return
    graph = graph_backend(settings)
    try:
        sync_renamed_channels(conn, graph)
    finally:
        if graph is not None:
            graph.close()


# -- the history DAG -------------------------------------------------------------------


def history_day(context: Mapping[str, Any]) -> PullWindow:
    """The day a history run imports: its data interval (a manual run without one: yesterday)."""
    from include.album.source.pull import PullWindow

    start, end = context.get("data_interval_start"), context.get("data_interval_end")
    if not start or not end:
        end = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        start = end - timedelta(days=1)
    return PullWindow(start=start, end=end)


@task_body
def history_units(context: Mapping[str, Any]) -> list[list[int]]:
    """The channels a history run imports, as work units: those of ``--dag-run-conf
    '{"channels": [ID or "@username", ...]}'``, else every subscribed channel."""
    from include.album.steps.history import channels_asked

    settings = load_settings()
    conf = getattr(context["dag_run"], "conf", None) or {}
    with albums_db(settings) as conn:
        channels = channels_asked(conn, settings, conf.get("channels"))
    day = history_day(context)
    log.info("importing %s..%s of %d channels: %s", day.start.isoformat(), day.end.isoformat(), len(channels),
             ", ".join(c.label for c in channels))
    return work_units([c.id for c in channels], settings.channels_mapped_per_run)


@task_body
def history(channel_ids: list[int], context: dict[str, Any], outlet: Asset | None = None) -> list[int]:
    """Import the run's day of a unit of channels; returns the albums new or changed. A task that
    used its share of the session, or met a wait, is rescheduled and goes on where it stopped."""
    from airflow.sdk.exceptions import AirflowRescheduleException

    from include.album.steps.history import HistoryPaused, import_history
    from include.album.steps.ingest import load_channels

    settings = load_settings()
    day = history_day(context)
    with albums_db(settings) as conn:
        context["channel_label"] = unit_label([c.label for c in load_channels(conn, channel_ids)], "channels")
        client = telegram_client(settings)
        try:
            results = import_history(conn, media_store(settings), client, channel_ids, settings, day)
        except HistoryPaused as paused:
            log.info("%s", paused)
            raise AirflowRescheduleException(paused.resume_at) from paused
        finally:
            report_requests(client)
    album_ids = sorted({album_id for result in results for album_id in result.album_ids})
    if outlet is not None:
        context["outlet_events"][outlet].extra = {"channel_ids": list(channel_ids), "album_ids": album_ids}
    return album_ids


# -- the refresh DAG -------------------------------------------------------------------


def refresh_window(context: Mapping[str, Any], settings: Settings) -> tuple[datetime, datetime]:
    """[end - refresh_lookback_hours, end) where end is the run's data interval end (or now)."""
    end = context.get("data_interval_end") or datetime.now(UTC)
    return end - timedelta(hours=settings.refresh_lookback_hours), end


@task_body
def refresh(channel_ids: list[int], context: dict[str, Any]) -> list[int]:
    """Re-read the recent posts of a unit of channels; returns the albums recomposed by edits or deletions."""
    from include.album.steps.edits import refresh_channels
    from include.album.steps.ingest import load_channels

    settings = load_settings()
    since, until = refresh_window(context, settings)
    with albums_db(settings) as conn:
        context["channel_label"] = unit_label([c.label for c in load_channels(conn, channel_ids)], "channels")
        client = telegram_client(settings)
        try:
            results = refresh_channels(conn, media_store(settings), client, channel_ids, settings, since, until)
        finally:
            report_requests(client)
    return sorted({album_id for result in results for album_id in result.album_ids})


@task_body
def republish(per_unit: Sequence[list[int] | None], context: dict[str, Any]) -> dict[str, int]:
    """Re-assemble and re-index the albums a refresh changed; unpublish what was deleted."""
    from include.album.steps.indexing import index_loose_posts, remove_deleted

    settings = load_settings()
    album_ids = returned_ids(per_unit)
    provider, store = vision_provider(settings), media_store(settings)
    seen = AlbumSeen(redis_client(settings))
    timeout, now = timedelta(minutes=settings.assembly_timeout_minutes), datetime.now(UTC)
    with albums_db(settings) as conn, open_indexer(conn, settings, provider.key) as indexer:
        albums = [load_album(conn, album_id) for album_id in album_ids]
        outcomes, failures = run_guarded(albums, "republish", lambda album: process_album(
            conn, store, seen, provider, album.id, timeout, now, indexer))
        settle(conn, "republish", failures, last_try=last_try(context))
        counts = index_loose_posts(conn, store, provider, indexer.qindex)
        counts.update(remove_deleted(conn, store, indexer.qindex, indexer.graph))
    counts["albums_republished"] = sum(1 for o in outcomes.values() if o in ("published", "indexed"))
    counts["albums_waiting"] = sum(1 for o in outcomes.values() if o == "waiting")
    log.info("republished after the refresh: %s", counts)
    return counts


@task_body
def reconcile_stores(context: dict[str, Any]) -> dict[str, int]:
    """Compare Postgres with S3, Qdrant and the graph over the refresh window; repair and report drift."""
    from include.album.steps.reconcile import reconcile

    settings = load_settings()
    since, until = refresh_window(context, settings)
    provider = vision_provider(settings)
    with albums_db(settings) as conn, open_indexer(conn, settings, provider.key) as indexer:
        drift = reconcile(conn, media_store(settings), indexer, provider, since, until)
    return {kind: len(ids) for kind, ids in drift.items()}


@task_body
def report(run_started: datetime | None) -> dict[str, int]:
    with albums_db(load_settings()) as conn:
        counts = db.fetch_one(conn, "run_report", {"since": run_started})
    # The old per-album gauge had unbounded series; this one is three numbers from Postgres.
    metrics.gauge("album_items_count_gauge", counts["albums_open"], label="pending")
    metrics.gauge("album_items_count_gauge", counts["albums_assembled"], label="assembled")
    metrics.gauge("album_items_count_gauge", counts["albums_partial"], label="partial")
    metrics.gauge("album_pending_oldest_age_seconds", counts["oldest_pending_seconds"])
    metrics.gauge("albums_quarantined", counts["albums_quarantined"])
    metrics.gauge("telegram_channels_failing", counts["channels_failing"])
    metrics.gauge("telegram_channels_unavailable", counts["channels_unavailable"])
    metrics.gauge("telegram_media_to_refetch", counts["media_to_refetch"])
    log.info("run report: %s", counts)
    return counts
