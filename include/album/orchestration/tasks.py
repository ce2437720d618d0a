"""The bodies of the pulling tasks of ``telegram_albums`` and ``telegram_albums_history``, and of
the tasks both run after the album task group: each builds its clients from Airflow connections
and calls the plain-Python pipeline. The DAG files only wire these together. The album steps'
bodies are in ``album_tasks``, the refresh DAG's in ``refresh_tasks``, what they share in ``runtime``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from include.album.domain.units import unit_label, work_units
from include.album.orchestration.connections import (
    albums_db,
    load_settings,
    media_store,
    open_indexer,
    telegram_client,
    vision_provider,
)
from include.album.orchestration.runtime import report_requests, returned_ids, task_body
from include.album.steps import metrics
from include.album.stores import db

if TYPE_CHECKING:
    from airflow.sdk import Asset

    from include.album.domain.settings import Settings
    from include.album.source.pull import PullWindow

log = logging.getLogger(__name__)


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
    """The channels this run pulls, as work units for the mapped ``ingest``: in a run the updates
    listener started, those it heard post (``change_check.find_hinted_channels``, no request);
    otherwise those Telegram says have messages above their mark (every channel in a backfill
    run; ``change_check.find_changed_channels``)."""
    from include.album.steps.change_check import find_changed_channels, find_hinted_channels

    settings = load_settings()
    if _run_type(context) == "asset_triggered":
        with albums_db(settings) as conn:
            channel_ids = find_hinted_channels(conn, settings)
        return _units(channel_ids, settings)
    window = pull_window(context)
    client = None if window is not None else telegram_client(settings, run_end=context.get("data_interval_end"))
    with albums_db(settings) as conn:
        try:
            channel_ids = find_changed_channels(conn, client, settings, window)
        finally:
            if client is not None:
                report_requests(client)
    return _units(channel_ids, settings)


def _units(channel_ids: list[int], settings: Settings) -> list[list[int]]:
    units = work_units(channel_ids, settings.channels_mapped_per_run)
    log.info("%d channels to pull in %d mapped units", len(channel_ids), len(units))
    return units


@task_body
def channel_units() -> list[list[int]]:
    """Every subscribed channel, as work units (the refresh DAG re-reads them all)."""
    from include.album.steps.channels import channels_to_pull

    settings = load_settings()
    with albums_db(settings) as conn:
        channels = channels_to_pull(conn, settings)
    log.info("%d subscribed channels: %s", len(channels), ", ".join(c.label for c in channels))
    return work_units([c.id for c in channels], settings.channels_mapped_per_run)


def pull_window(context: Mapping[str, Any]) -> PullWindow | None:
    """Backfill runs pull their data interval by date; other runs pull above the mark."""
    from include.album.source.pull import PullWindow

    start, end = context.get("data_interval_start"), context.get("data_interval_end")
    if _run_type(context) == "backfill" and start and end:
        return PullWindow(start=start, end=end)
    return None


def _run_type(context: Mapping[str, Any]) -> str | None:
    """``scheduled``, ``manual``, ``backfill``, ``asset_triggered``, ..."""
    run_type = getattr(context["dag_run"], "run_type", None)
    return getattr(run_type, "value", run_type)


@task_body
def ingest(channel_ids: list[int], context: dict[str, Any], outlet: Asset | None = None) -> list[int]:
    """Pull a unit of channels over one Telegram connection; returns the albums new or changed."""
    from include.album.steps.channels import load_channels
    from include.album.steps.ingest import ingest_channels

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




@task_body
def index_posts() -> dict[str, int]:
    """Index the posts outside albums that are new or changed; unpublish what was deleted; give
    renamed channels their new names in Qdrant and the graph."""
    from include.album.steps.indexing import (
        index_loose_posts,
        loose_work_pending,
        remove_deleted,
        sync_renamed_channels,
    )

    settings = load_settings()
    with albums_db(settings) as conn:
        if not loose_work_pending(conn):
            log.info("no post to index, nothing deleted to unpublish, no channel renamed; Qdrant and the graph "
                     "not opened")
            return {"posts": 0, "points": 0, "posts_removed": 0, "albums_removed": 0, "channels_renamed": 0}
        provider = vision_provider(settings)
        store = media_store(settings)
        with open_indexer(conn, settings, provider.key) as indexer:
            counts = {"channels_renamed": sync_renamed_channels(conn, indexer.qindex, indexer.graph)}
            counts.update(index_loose_posts(conn, store, provider, indexer.qindex))
            counts.update(remove_deleted(conn, store, indexer.qindex, indexer.graph))
    return counts


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

    from include.album.steps.channels import load_channels
    from include.album.steps.history import HistoryPaused, import_history

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




NO_CHANNELS = ("no channels registered: add one with `python -m include.album channels add @USERNAME --tenant "
               "TENANT` (README, \"CLI\")")


def summary_line(counts: Mapping[str, Any]) -> str:
    """What a run did, in one line (the ``report`` task's last log line; ``airflow dags test``
    prints it): new posts, albums processed and where the stores stand."""
    if not counts["channels_active"]:
        return NO_CHANNELS
    waiting = f", {counts['albums_open']} waiting for items" if counts["albums_open"] else ""
    attention = [_count(counts[key], noun) + what for key, noun, what in (
        ("albums_quarantined", "album", " quarantined (`quarantine list`)"),
        ("channels_failing", "channel", " failing (`channels list`)"),
        ("channels_unavailable", "channel", " set aside (`channels list`)")) if counts[key]]
    return (f"{_count(counts['posts_new'], 'new post')} from {counts['channels_with_new_posts']} of "
            f"{_count(counts['channels_active'], 'channel')}; {_count(counts['albums_indexed'], 'album')} and "
            f"{_count(counts['posts_indexed'], 'post')} indexed; {_count(counts['albums'], 'album')} stored "
            f"({counts['albums_assembled']} assembled, {counts['albums_partial']} partial{waiting})"
            + (f"; {', '.join(attention)}" if attention else ""))


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


@task_body
def report(run_started: datetime | None) -> dict[str, Any]:
    """The run's totals (``run_report``), the gauges set from them, and ``summary_line``."""
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
    summary = summary_line(counts)
    log.info("%s", summary)
    return {**counts, "summary": summary}
