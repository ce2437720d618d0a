"""The bodies of the DAG's tasks: each builds its clients from Airflow connections and calls
the plain-Python pipeline. The DAG file only wires these together.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from include.album import db
from include.album.connections import albums_db, load_settings, media_store, telegram_client
from include.album.ingest import ingest_channel
from include.album.models import Channel
from include.album.telegram import PullWindow

log = logging.getLogger(__name__)


def migrate() -> list[str]:
    settings = load_settings()
    with albums_db(settings) as conn:
        applied = db.migrate(conn)
    media_store(settings).ensure_bucket()
    log.info("schema up to date (%d migrations applied now)", len(applied))
    return applied


def channels_to_pull() -> list[int]:
    with albums_db(load_settings()) as conn:
        channels = [Channel(**row) for row in db.fetch_all(conn, "channels_to_pull")]
    log.info("%d subscribed channels: %s", len(channels), ", ".join(c.label for c in channels))
    return [c.id for c in channels]


def pull_window(context: Mapping[str, Any]) -> PullWindow | None:
    """Backfill runs pull their data interval by date; other runs pull above the mark."""
    dag_run = context["dag_run"]
    start, end = context.get("data_interval_start"), context.get("data_interval_end")
    run_type = getattr(dag_run, "run_type", None)
    if getattr(run_type, "value", run_type) == "backfill" and start and end:
        return PullWindow(start=start, end=end)
    return None


def ingest(channel_id: int, context: dict[str, Any]) -> list[int]:
    settings = load_settings()
    window = pull_window(context)
    with albums_db(settings) as conn:
        label = db.fetch_one(conn, "channel_get", {"channel_id": channel_id})
        context["channel_label"] = f"@{label['username']}" if label and label["username"] else str(channel_id)
        client = telegram_client(settings, run_end=context.get("data_interval_end"))
        result = ingest_channel(conn, media_store(settings), client, channel_id, settings, window=window)
    return result.album_ids


def albums_ready(per_channel: Sequence[list[int] | None]) -> list[int]:
    """Flatten the mapped ingestion results into one sorted list of album ids."""
    # Index by length: iterating Airflow's lazy XCom sequence probes one past the end (a 404 log).
    results = [per_channel[i] for i in range(len(per_channel))]
    album_ids = sorted({album_id for ids in results if ids for album_id in ids})
    log.info("%d albums new or changed in this run", len(album_ids))
    return album_ids


def report(album_ids: list[int]) -> dict[str, int]:
    with albums_db(load_settings()) as conn:
        counts = db.fetch_one(conn, "run_report", {"album_ids": album_ids})
    log.info("run report: %s", counts)
    return counts
