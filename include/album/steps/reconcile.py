"""Reconciliation: Postgres is the source of truth; S3 summaries, Qdrant and the graph are derived.

For a window of recent posts (the refresh DAG's look-back) it compares what Postgres says
each store should hold with what it holds, repairs what can be derived again and reports the
rest, with counts and ids in the log and ``telegram_albums.reconcile_drift.<kind>``:

=====================  ==========================================================  =========================
kind                   meaning                                                     repair
=====================  ==========================================================  =========================
s3_summary_missing     an enriched album's S3 summary object is gone               written again
media_missing          a stored post's media object is gone from S3                reported (re-ingest it)
qdrant_missing         a settled album/post has no point                           album re-indexed / upsert
qdrant_orphan          a point of a deleted or unknown post/album                  point deleted
graph_missing          a settled album is missing or stale in the graph            album re-indexed
graph_orphan           an Album node of a deleted or unknown album                 node deleted
=====================  ==========================================================  =========================

Albums and posts "in flux" (changed since they were indexed, so the next run re-indexes them)
are left out of both sides: they are not drift.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

import psycopg

from include.album.providers.vision import VisionProvider
from include.album.steps import metrics
from include.album.steps.assembly import Album, load_album, write_summaries
from include.album.steps.indexing import AlbumDocs, AlbumIndexer, loose_post_documents
from include.album.stores import db, graph
from include.album.stores.media import MediaStore
from include.album.stores.qdrant import IndexDoc, post_point_id, utc_iso

log = logging.getLogger(__name__)

DRIFT_KINDS = ("s3_summary_missing", "media_missing", "qdrant_missing", "qdrant_orphan", "graph_missing",
               "graph_orphan")


@dataclass
class _Window:
    """One reconciliation: the stores, the posts dated in [since, until), and the drift found."""

    conn: psycopg.Connection
    store: MediaStore
    indexer: AlbumIndexer
    since: datetime
    until: datetime
    repair: bool
    drift: dict[str, list[str]] = field(default_factory=lambda: {kind: [] for kind in DRIFT_KINDS})
    to_reindex: set[int] = field(default_factory=set)  # albums whose points or graph entries are missing or stale

    @property
    def dates(self) -> dict[str, datetime]:
        return {"since": self.since, "until": self.until}

    def dated(self, doc: IndexDoc) -> bool:
        return int(self.since.timestamp()) <= doc.payload["posted_ts"] < int(self.until.timestamp())


def reconcile(conn: psycopg.Connection, store: MediaStore, indexer: AlbumIndexer, provider: VisionProvider,
              since: datetime,
              until: datetime, *, repair: bool = True) -> dict[str, list[str]]:
    """Compare and (with ``repair``) mend the stores for posts dated in [since, until); returns drift by kind."""
    window = _Window(conn, store, indexer, since, until, repair)
    albums = [load_album(conn, r["id"]) for r in db.fetch_all(conn, "albums_dated", window.dates)]
    settled = [a for a in albums if a.deleted_at is None and a.is_indexed]
    in_flux = {a.id for a in albums if a.deleted_at is None and not a.is_indexed}

    _check_s3(window, settled)
    album_docs = indexer.documents(settled)
    loose = db.fetch_all(conn, "loose_posts_dated", window.dates)
    _check_qdrant(window, album_docs, loose, provider, in_flux)
    if indexer.graph is not None:
        _check_graph(window, settled, album_docs, in_flux)
    if repair and window.to_reindex:
        indexer.index([a for a in settled if a.id in window.to_reindex])

    _report(window.drift, repair)
    log.info("reconciled %d albums and %d loose posts dated %s..%s: %s", len(albums), len(loose),
             since.isoformat(), until.isoformat(), {k: len(v) for k, v in window.drift.items()})
    return window.drift


def _check_s3(window: _Window, settled: list[Album]) -> None:
    """Every published summary of the settled albums (written again) and every stored media object."""
    for album in settled:
        for tenant_id, key in ((album.meta.get("enrichment") or {}).get("s3_keys") or {}).items():
            if not window.store.exists(key):
                window.drift["s3_summary_missing"].append(key)
                if window.repair:
                    row = db.fetch_one(window.conn, "album_summary_get", {"album_id": album.id})
                    write_summaries(window.store, album, row["summary"], [tenant_id])
    for row in db.fetch_all(window.conn, "media_dated", window.dates):
        if not window.store.exists(row["s3_key"]):
            window.drift["media_missing"].append(row["s3_key"])


def _check_qdrant(window: _Window, album_docs: AlbumDocs, loose: list[dict], provider: VisionProvider,
                  in_flux: set[int]) -> None:
    """The points indexing would write now, against the points dated in the window. A missing
    album point marks its album for re-indexing; a missing loose post's point is upserted."""
    qindex = window.indexer.qindex
    loose_docs = loose_post_documents(window.conn, window.store, provider, [r for r in loose if r["settled"]])
    expected = {d.point_id: d for d in [*album_docs.docs, *loose_docs] if window.dated(d)}
    owner = {d.point_id: d.payload.get("album_id") for d in album_docs.docs}
    flux_loose = {post_point_id(r["channel_id"], r["message_id"]) for r in loose if not r["settled"]}
    actual = qindex.points_dated(window.since, window.until)
    for point_id in sorted(set(expected) - set(actual)):
        window.drift["qdrant_missing"].append(point_id)
        if owner.get(point_id) is not None:
            window.to_reindex.add(owner[point_id])
    orphans = sorted(p for p, payload in actual.items()
                     if p not in expected and p not in flux_loose and payload.get("album_id") not in in_flux)
    window.drift["qdrant_orphan"].extend(orphans)
    if window.repair:
        missing_loose = set(window.drift["qdrant_missing"]) - set(owner)  # album points come back with their album
        qindex.upsert([expected[p] for p in sorted(missing_loose)])
        qindex.delete_points(orphans)


def _check_graph(window: _Window, settled: list[Album], album_docs: AlbumDocs, in_flux: set[int]) -> None:
    """The window's Album nodes with their items: a missing or stale one is re-indexed, an orphan deleted."""
    backend = window.indexer.graph
    stored = graph.albums_dated(backend, utc_iso(window.since), utc_iso(window.until))
    wanted = {a.id: row for a, row in zip(settled, album_docs.albums, strict=True)
              if window.since <= a.posted_at < window.until}
    items = {album_id: len(points) for album_id, points in album_docs.post_points.items()}
    for album_id, row in sorted(wanted.items()):
        node = stored.get(album_id)
        if node is None or node["content_hash"] != row["content_hash"] or node["items"] != items[album_id]:
            window.drift["graph_missing"].append(str(album_id))
            window.to_reindex.add(album_id)
    graph_orphans = sorted(set(stored) - set(wanted) - in_flux)
    window.drift["graph_orphan"].extend(str(a) for a in graph_orphans)
    if window.repair:
        graph.delete_albums(backend, graph_orphans)


def _report(drift: dict[str, list[str]], repair: bool) -> None:
    """Each kind of drift found: a metric and a warning with (the first 50) ids."""
    for kind, ids in drift.items():
        if ids:
            metrics.incr("reconcile_drift_total", len(ids), label=kind)
            log.warning("drift %s: %d (%s)%s", kind, len(ids), ", ".join(ids[:50]),
                        "" if not repair else " — reported only" if kind == "media_missing" else " — repaired")
