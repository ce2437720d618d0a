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
from datetime import datetime
from typing import Any

import psycopg

from include.album.providers.vision import VisionProvider
from include.album.steps import metrics
from include.album.steps.assembly import load_album, write_summaries
from include.album.steps.indexing import AlbumIndexer, loose_post_documents
from include.album.stores import db, graph
from include.album.stores.media import MediaStore
from include.album.stores.qdrant import post_point_id, utc_iso

log = logging.getLogger(__name__)

DRIFT_KINDS = ("s3_summary_missing", "media_missing", "qdrant_missing", "qdrant_orphan", "graph_missing",
               "graph_orphan")


def reconcile(conn: psycopg.Connection, store: MediaStore, indexer: AlbumIndexer, provider: VisionProvider,
              since: datetime,
              until: datetime, *, repair: bool = True) -> dict[str, list[str]]:
    """Compare and (with ``repair``) mend the stores for posts dated in [since, until); returns drift by kind."""
    drift: dict[str, list[str]] = {kind: [] for kind in DRIFT_KINDS}
    albums = [load_album(conn, r["id"]) for r in db.fetch_all(conn, "albums_dated", {"since": since, "until": until})]
    settled = [a for a in albums if a.deleted_at is None and a.is_indexed]
    in_flux = {a.id for a in albums if a.deleted_at is None and not a.is_indexed}
    to_reindex: set[int] = set()  # albums whose points or graph entries are missing or stale

    # S3: every published summary and every stored media object of the window.
    for album in settled:
        for tenant_id, key in ((album.meta.get("enrichment") or {}).get("s3_keys") or {}).items():
            if not store.exists(key):
                drift["s3_summary_missing"].append(key)
                if repair:
                    row = db.fetch_one(conn, "album_summary_get", {"album_id": album.id})
                    write_summaries(store, album, row["summary"], [tenant_id])
    for row in db.fetch_all(conn, "media_dated", {"since": since, "until": until}):
        if not store.exists(row["s3_key"]):
            drift["media_missing"].append(row["s3_key"])

    # Qdrant: the points indexing would write now, against the points dated in the window.
    def dated(doc: Any) -> bool:
        return int(since.timestamp()) <= doc.payload["posted_ts"] < int(until.timestamp())

    album_docs = indexer.documents(settled)
    loose = db.fetch_all(conn, "loose_posts_dated", {"since": since, "until": until})
    loose_docs = loose_post_documents(conn, store, provider, [r for r in loose if r["settled"]])
    expected = {d.point_id: d for d in [*album_docs.docs, *loose_docs] if dated(d)}
    owner = {d.point_id: d.payload.get("album_id") for d in album_docs.docs}
    flux_loose = {post_point_id(r["channel_id"], r["message_id"]) for r in loose if not r["settled"]}
    actual = indexer.qindex.points_dated(since, until)
    for point_id in sorted(set(expected) - set(actual)):
        drift["qdrant_missing"].append(point_id)
        if owner.get(point_id) is not None:
            to_reindex.add(owner[point_id])
    orphans = sorted(p for p, payload in actual.items()
                     if p not in expected and p not in flux_loose and payload.get("album_id") not in in_flux)
    drift["qdrant_orphan"].extend(orphans)
    if repair:
        missing_loose = set(drift["qdrant_missing"]) - set(owner)  # album points come back with their album
        indexer.qindex.upsert([expected[p] for p in sorted(missing_loose)])
        indexer.qindex.delete_points(orphans)

    # Graph: Album nodes of the window with their items.
    if indexer.graph is not None:
        stored = graph.albums_dated(indexer.graph, utc_iso(since), utc_iso(until))
        wanted = {a.id: row for a, row in zip(settled, album_docs.albums, strict=True) if since <= a.posted_at < until}
        items = {album_id: len(points) for album_id, points in album_docs.post_points.items()}
        for album_id, row in sorted(wanted.items()):
            node = stored.get(album_id)
            if node is None or node["content_hash"] != row["content_hash"] or node["items"] != items[album_id]:
                drift["graph_missing"].append(str(album_id))
                to_reindex.add(album_id)
        graph_orphans = sorted(set(stored) - set(wanted) - in_flux)
        drift["graph_orphan"].extend(str(a) for a in graph_orphans)
        if repair:
            graph.delete_albums(indexer.graph, graph_orphans)

    if repair and to_reindex:
        indexer.index([a for a in settled if a.id in to_reindex])

    for kind, ids in drift.items():
        if ids:
            metrics.incr("reconcile_drift_total", len(ids), label=kind)
            log.warning("drift %s: %d (%s)%s", kind, len(ids), ", ".join(ids[:50]),
                        "" if not repair else " — reported only" if kind == "media_missing" else " — repaired")
    log.info("reconciled %d albums and %d loose posts dated %s..%s: %s", len(albums), len(loose),
             since.isoformat(), until.isoformat(), {k: len(v) for k, v in drift.items()})
    return drift
