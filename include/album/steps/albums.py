"""An album's steps all at once, in a plain loop: what the mapped task group does, minus Airflow.

The refresh DAG's republish and the library loops (the benchmark, the tests) take an album
through vision, summary, enrich and, given an ``AlbumIndexer``, index, one after another.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import psycopg

from include.album.domain.lifecycle import StepOutcome
from include.album.providers.vision import VisionProvider
from include.album.steps.assembly import AlbumSeen, analyse_album, enrich_album, load_album, summarize_album
from include.album.steps.indexing import AlbumIndexer
from include.album.stores.media import MediaStore


def process_album(conn: psycopg.Connection, store: MediaStore, seen: AlbumSeen, provider: VisionProvider,
                  album_id: int, timeout: timedelta, now: datetime,
                  indexer: AlbumIndexer | None = None) -> StepOutcome:
    """All steps for one album: ``PUBLISHED`` (enriched, and indexed with ``indexer``), ``INDEXED``
    (it was enriched already), ``WAITING``, ``UNCHANGED``, or why it was passed over."""
    album = load_album(conn, album_id)
    if album.passed_over:
        return album.passed_over
    outcome = StepOutcome.UNCHANGED
    if not album.is_assembled:
        analyse_album(conn, store, provider, album)
        if summarize_album(conn, album, provider.key, timeout, now) is StepOutcome.WAITING:
            return StepOutcome.WAITING
        published = enrich_album(conn, store, seen, load_album(conn, album_id))
        outcome = StepOutcome.PUBLISHED if published else StepOutcome.WAITING
        album = load_album(conn, album_id)
    if indexer is not None and album.ready_to_index:
        indexer.index([album])
        if outcome is not StepOutcome.PUBLISHED:
            outcome = StepOutcome.INDEXED
    return outcome
