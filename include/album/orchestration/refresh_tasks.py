"""The bodies of ``telegram_albums_refresh``'s tasks: re-read recent posts for edits and deletions,
republish what they changed, and reconcile the stores with Postgres."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from include.album.domain.lifecycle import AlbumStep, StepOutcome
from include.album.domain.settings import Settings
from include.album.domain.units import unit_label
from include.album.orchestration.connections import (
    albums_db,
    load_settings,
    media_store,
    open_indexer,
    redis_client,
    telegram_client,
    vision_provider,
)
from include.album.orchestration.runtime import last_try, report_requests, returned_ids, task_body
from include.album.steps.assembly import AlbumSeen, load_album
from include.album.steps.quarantine import run_guarded, settle

log = logging.getLogger(__name__)


def refresh_window(context: Mapping[str, Any], settings: Settings) -> tuple[datetime, datetime]:
    """[end - refresh_lookback_hours, end) where end is the run's data interval end (or now)."""
    end = context.get("data_interval_end") or datetime.now(UTC)
    return end - timedelta(hours=settings.refresh_lookback_hours), end


@task_body
def refresh(channel_ids: list[int], context: dict[str, Any]) -> list[int]:
    """Re-read the recent posts of a unit of channels; returns the albums recomposed by edits or deletions."""
    from include.album.steps.channels import load_channels
    from include.album.steps.edits import refresh_channels

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
    from include.album.steps.albums import process_album
    from include.album.steps.indexing import index_loose_posts, remove_deleted

    settings = load_settings()
    album_ids = returned_ids(per_unit)
    provider, store = vision_provider(settings), media_store(settings)
    seen = AlbumSeen(redis_client(settings))
    timeout, now = timedelta(minutes=settings.assembly_timeout_minutes), datetime.now(UTC)
    with albums_db(settings) as conn, open_indexer(conn, settings, provider.key) as indexer:
        albums = [load_album(conn, album_id) for album_id in album_ids]
        outcomes, failures = run_guarded(albums, AlbumStep.REPUBLISH, lambda album: process_album(
            conn, store, seen, provider, album.id, timeout, now, indexer))
        settle(conn, AlbumStep.REPUBLISH, failures, last_try=last_try(context))
        counts = index_loose_posts(conn, store, provider, indexer.qindex)
        counts.update(remove_deleted(conn, store, indexer.qindex, indexer.graph))
    done = (StepOutcome.PUBLISHED, StepOutcome.INDEXED)
    counts["albums_republished"] = sum(1 for o in outcomes.values() if o in done)
    counts["albums_waiting"] = sum(1 for o in outcomes.values() if o is StepOutcome.WAITING)
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
