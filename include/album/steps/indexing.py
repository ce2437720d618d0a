"""Search indexing: albums and posts into Qdrant, albums into the graph.

* An album (after enrichment) becomes one album point (every item's text, a model's summary,
  the items' OCR) and one point per item post (its text + its own vision text); its post points
  that are no longer items are deleted, and the graph gets the album, its posts in position
  order and its labels. Every point carries its channel's @username and title (searchable).
* A post outside albums becomes one point (text + the vision text of its image, analysed
  through the same cache).
* What was deleted on Telegram leaves every store (``remove_deleted``): a deleted post its
  point and graph node, a tombstoned album its S3 summaries, points and graph node.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import psycopg
from psycopg.types.json import Jsonb

from include.album.domain.lifecycle import Album
from include.album.domain.summary import model_summary
from include.album.providers.vision import VisionProvider
from include.album.steps.assembly import albums_locked, analyse_images, item_outcomes, vision_input
from include.album.stores import db, graph
from include.album.stores.media import MediaStore
from include.album.stores.qdrant import IndexDoc, QdrantIndex, album_point_id, post_point_id, timestamp_fields, utc_iso

log = logging.getLogger(__name__)


def readable(text: str | None) -> str:
    """OCR lines as sentences; ALL-CAPS lines in sentence case (embeddings read shouting poorly)."""
    lines = [line.strip() for line in (text or "").replace(" | ", "\n").splitlines() if line.strip()]
    return ". ".join(line.capitalize() if line.isupper() else line for line in lines)


def post_text(text: str | None, result: dict | None) -> str:
    """A post point's searchable text: the post's own text and what its item's vision adds.

    The local provider's descriptions are templates ("Photo, landscape 800x450, ...") that only
    dilute a vector, so only a model's description is embedded; OCR text always is.
    """
    result = result or {}
    description = result.get("description") if result.get("provider") != "local" else None
    return _join(text, description, readable((result.get("ocr") or {}).get("text")))


def album_text(item_texts: Sequence[str | None], enrichment: dict) -> str:
    """An album point's searchable text: its items' texts in position order (the caption and any
    other item's own text, each once), a model's summary, its items' OCR text."""
    texts = list(dict.fromkeys(t.strip() for t in item_texts if t and t.strip()))
    return _join(*texts, model_summary(enrichment), readable(enrichment.get("ocr_text")))


def _join(*parts: str | None) -> str:
    return "\n".join(p.strip() for p in parts if p and p.strip())


class Subscribers:
    """Who reads the channels of some points, and the channels' names: every point's payload
    carries its tenants (the search filter) and its channel's @username and title."""

    def __init__(self, conn: psycopg.Connection, channel_ids: Sequence[int]):
        self.rows = db.fetch_all(conn, "channel_subscribers", {"channel_ids": sorted(set(channel_ids))})
        self._payloads: dict[int, dict] = {}
        for row in self.rows:
            payload = self._payloads.setdefault(row["channel_id"], {
                "channel_id": row["channel_id"], "tenant_ids": [], "channel_username": row["username"],
                "channel_title": row["title"]})
            payload["tenant_ids"].append(row["tenant_id"])

    def payload(self, channel_id: int) -> dict:
        """The channel's part of a point's payload (a channel nobody reads: no tenant, no names)."""
        found = self._payloads.get(channel_id)
        return {**found, "tenant_ids": list(found["tenant_ids"])} if found else {
            "channel_id": channel_id, "tenant_ids": [], "channel_username": None, "channel_title": None}


@dataclass
class AlbumDocs:
    """What indexing writes for a set of albums: Qdrant documents and graph rows."""

    docs: list[IndexDoc] = field(default_factory=list)
    post_points: dict[int, list[str]] = field(default_factory=dict)  # album id -> its item post point ids
    subscriptions: list[dict] = field(default_factory=list)
    albums: list[dict] = field(default_factory=list)
    items: list[dict] = field(default_factory=list)
    labels: list[dict] = field(default_factory=list)
    has_text: dict[int, bool] = field(default_factory=dict)  # album id -> its point has words to search


class AlbumIndexer:
    """Writes albums to Qdrant and (when configured) the graph, then marks them indexed."""

    def __init__(self, conn: psycopg.Connection, qindex: QdrantIndex, graph_backend: graph.GraphBackend | None,
                 provider_key: str):
        self.conn = conn
        self.qindex = qindex
        self.graph = graph_backend
        self.provider_key = provider_key

    def documents(self, albums: Sequence[Album]) -> AlbumDocs:
        """The points and graph rows of albums as enriched now (also what reconciliation expects)."""
        out = AlbumDocs()
        if not albums:
            return out
        subscribers = Subscribers(self.conn, [a.channel_id for a in albums])
        out.subscriptions = subscribers.rows
        for album in albums:
            enrichment = album.meta.get("enrichment") or {}
            base = {"album_id": album.id, **subscribers.payload(album.channel_id)}
            outcomes = {o.position: o for o in item_outcomes(self.conn, album, self.provider_key)}
            posts = db.fetch_all(self.conn, "album_index_posts", {"album_id": album.id})
            text = album_text([post["text"] for post in posts], enrichment)
            out.has_text[album.id] = bool(text.strip())
            out.docs.append(IndexDoc(album_point_id(album.id), text, {
                **base, "kind": "album", "grouped_id": album.grouped_id, "items_count": album.items_count,
                "status": album.state, "labels": enrichment.get("vision_labels", []),
                **timestamp_fields(album.posted_at)}))
            out.post_points[album.id] = []
            for post in posts:
                result = outcomes[post["position"]].result if post["position"] in outcomes else None
                point = post_point_id(post["channel_id"], post["message_id"])
                out.post_points[album.id].append(point)
                out.docs.append(IndexDoc(point, post_text(post["text"], result), {
                    **base, "kind": "post", "message_id": post["message_id"], "position": post["position"],
                    "labels": (result or {}).get("labels", []), **timestamp_fields(post["posted_at"])}))
                out.items.append({"album_id": album.id, "post_id": graph.post_id(post["channel_id"],
                                                                                 post["message_id"]),
                                  "channel_id": post["channel_id"], "message_id": post["message_id"],
                                  "position": post["position"], "media_kind": post["media_kind"],
                                  "text": post["text"][:1000], "posted_at": utc_iso(post["posted_at"])})
            out.albums.append({"album_id": album.id, "channel_id": album.channel_id, "grouped_id": album.grouped_id,
                               "album_kind": album.album_kind, "items_count": album.items_count,
                               "caption_text": album.caption_text, "posted_at": utc_iso(album.posted_at),
                               "status": album.state, "content_hash": album.content_hash})
            out.labels.extend({"album_id": album.id, "label": label, "count": count}
                              for label, count in (enrichment.get("label_counts") or {}).items())
        return out

    def index(self, albums: Sequence[Album]) -> dict[str, int]:
        """Index the albums as they are when their locks are taken (``albums_locked``), so a
        writer never replaces the points of a newer composition with those of an older one."""
        with albums_locked(self.conn, [a.id for a in albums]) as current:
            return self._index([a for a in current if a.is_enriched and a.deleted_at is None])

    def write(self, albums: Sequence[Album]) -> tuple[AlbumDocs, int]:
        """Write the albums' points (pruning post points that are no longer items) and graph
        nodes, marking nothing (``reindex`` writes a collection the marks are not about)."""
        out = self.documents(albums)
        points = self.qindex.upsert(out.docs)
        for album_id, point_ids in out.post_points.items():
            self.qindex.prune_album_posts(album_id, point_ids)
        if self.graph is not None:
            graph.write_subscriptions(self.graph, out.subscriptions)
            graph.write_albums(self.graph, out.albums, out.items, out.labels)
        return out, points

    def _index(self, albums: Sequence[Album]) -> dict[str, int]:
        if not albums:
            return {"albums": 0, "points": 0}
        out, points = self.write(albums)
        now = datetime.now(UTC)
        with self.conn.transaction():
            for album in albums:
                db.execute(self.conn, "album_mark_indexed", {
                    "album_id": album.id, "content_hash": album.content_hash, "indexed_version": album.enriched_at,
                    "indexed_at": now,
                    "index": Jsonb({"indexed_at": now.isoformat(), "embedding": self.qindex.embedder.key,
                                    "has_text": out.has_text[album.id],
                                    "graph": self.graph.name if self.graph else None})})
                db.execute(self.conn, "album_posts_mark_indexed", {"album_id": album.id, "indexed_at": now})
        log.info("indexed %d albums: %d points%s", len(albums), points,
                 f", graph {self.graph.name}" if self.graph else " (no graph configured)")
        return {"albums": len(albums), "points": points}


def loose_post_documents(conn: psycopg.Connection, store: MediaStore, provider: VisionProvider,
                         rows: Sequence[dict]) -> list[IndexDoc]:
    """Points of posts outside albums (rows of ``posts_to_index``), vision through the cache."""
    targets = [(f"channel {r['channel_id']} message {r['message_id']}", vision_input(r)) for r in rows]
    analyse_images(conn, store, provider, targets)
    shas = sorted({t.sha256 for _, t in targets if t.sha256})
    results = {r["sha256"]: r["result"] for r in db.fetch_all(conn, "vision_cached",
                                                              {"provider_key": provider.key, "shas": shas})}
    subscribers = Subscribers(conn, [r["channel_id"] for r in rows])
    docs = []
    for row, (_, target) in zip(rows, targets, strict=True):
        result = results.get(target.sha256) if target.sha256 else None
        docs.append(IndexDoc(post_point_id(row["channel_id"], row["message_id"]),
                             post_text(row["text"], result), {
            "kind": "post", **subscribers.payload(row["channel_id"]), "message_id": row["message_id"],
            "labels": (result or {}).get("labels", []), **timestamp_fields(row["posted_at"])}))
    return docs


def index_loose_posts(conn: psycopg.Connection, store: MediaStore, provider: VisionProvider, qindex: QdrantIndex,
                      limit: int = 5000) -> dict[str, int]:
    """Index posts outside albums that are new or changed since they were indexed.

    One writer at a time (``loose_posts_lock``); each post is marked with the version it was
    read at, so an edit committed meanwhile is indexed by the next call."""
    with conn.transaction():
        db.execute(conn, "loose_posts_lock")
        rows = db.fetch_all(conn, "posts_to_index", {"limit": limit})
        points = qindex.upsert(loose_post_documents(conn, store, provider, rows))
        now = datetime.now(UTC)
        db.execute_many(conn, "post_mark_indexed", [
            {"channel_id": r["channel_id"], "message_id": r["message_id"], "indexed_at": now,
             "version": r["updated_at"]} for r in rows])
    log.info("indexed %d posts outside albums (%d points)", len(rows), points)
    return {"posts": len(rows), "points": points}


def sync_renamed_channels(conn: psycopg.Connection, qindex: QdrantIndex,
                          graph_backend: graph.GraphBackend | None) -> int:
    """Give channels renamed on Telegram their new @username and title in Qdrant (payload and
    lexical vector of their points) and in the graph (the table has them already, from
    ``ingest.follow_renames``); returns how many channels."""
    renamed = db.fetch_all(conn, "channels_renamed", {"limit": 1000})
    if not renamed:
        return 0
    points = sum(qindex.rename_channel(r["id"], r["username"], r["title"]) for r in renamed)
    if graph_backend is not None:
        graph.write_subscriptions(graph_backend, Subscribers(conn, [r["id"] for r in renamed]).rows)
    with conn.transaction():
        db.execute(conn, "channels_rename_synced", {"channel_ids": [r["id"] for r in renamed],
                                                    "renamed_at": [r["renamed_at"] for r in renamed]})
    log.info("%d renamed channels now carry their new username and title in %d points%s", len(renamed), points,
             " and the graph" if graph_backend else "")
    return len(renamed)


def loose_work_pending(conn: psycopg.Connection) -> bool:
    """Whether ``sync_renamed_channels``, ``index_loose_posts`` or ``remove_deleted`` has anything
    to do: four one-row queries, so that a quiet window opens neither Qdrant nor the embedding model."""
    return any(db.fetch_all(conn, name, {"limit": 1})
               for name in ("channels_renamed", "posts_to_index", "posts_to_unindex", "albums_to_unpublish"))


def remove_deleted(conn: psycopg.Connection, store: MediaStore, qindex: QdrantIndex,
                   graph_backend: graph.GraphBackend | None,
                   limit: int = 5000) -> dict[str, int]:
    """Take what was deleted on Telegram out of every store that published it.

    Deleted posts (in albums or not) lose their Qdrant point and graph node; tombstoned
    albums (every post deleted) lose their S3 summaries, album point and graph node. Each is
    marked done only after its stores are clean, so a failure is retried by the next call.
    """
    with conn.transaction():
        db.execute(conn, "loose_posts_lock")
        gone = db.fetch_all(conn, "posts_to_unindex", {"limit": limit})
        qindex.delete_points([post_point_id(r["channel_id"], r["message_id"]) for r in gone])
        if graph_backend is not None:
            graph.delete_posts(graph_backend, [graph.post_id(r["channel_id"], r["message_id"]) for r in gone])
        db.execute_many(conn, "post_mark_indexed", [
            {"channel_id": r["channel_id"], "message_id": r["message_id"], "indexed_at": None, "version": None}
            for r in gone])
    albums = db.fetch_all(conn, "albums_to_unpublish", {"limit": limit})
    for album in albums:
        store.delete([key for key in (album["s3_keys"] or {}).values()])
        qindex.delete_album(album["id"])
        if graph_backend is not None:
            graph.delete_albums(graph_backend, [album["id"]])
        db.execute(conn, "album_unpublished", {"album_id": album["id"]})
    if gone or albums:
        log.info("removed %d deleted posts (%s) and %d deleted albums (%s) from the index%s", len(gone),
                 ", ".join(f"{r['channel_id']}:{r['message_id']}" for r in gone[:50]), len(albums),
                 ", ".join(str(a["id"]) for a in albums[:50]), " and the graph" if graph_backend else "")
    return {"posts_removed": len(gone), "albums_removed": len(albums)}
