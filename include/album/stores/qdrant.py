"""Qdrant: one collection of post and album points, always searched within a tenant.

Point ids are deterministic (UUIDv5 of ``post:<channel>:<message>`` / ``album:<id>``), so a
rerun overwrites instead of duplicating. Payload: ``kind`` (post|album), ``album_id`` (int,
absent for posts outside albums), ``channel_id``, ``tenant_ids``, ``posted_at`` (ISO) and
``posted_ts`` (epoch seconds, for ranges), ``labels``, ``text``.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from qdrant_client import QdrantClient, models

from include.album.domain.models import validate_tenant_id
from include.album.providers.embeddings import Embedder

log = logging.getLogger(__name__)

POINT_NAMESPACE = uuid.UUID("6f1f2c1e-3b7a-5d0e-9a51-7e1e6b2d4c10")
TEXT_PAYLOAD_CHARS = 2000


class IndexMismatch(Exception):
    """The collection holds vectors of another embedding provider."""


def post_point_id(channel_id: int, message_id: int) -> str:
    return str(uuid.uuid5(POINT_NAMESPACE, f"post:{channel_id}:{message_id}"))


def album_point_id(album_id: int) -> str:
    return str(uuid.uuid5(POINT_NAMESPACE, f"album:{album_id}"))


@dataclass(frozen=True)
class IndexDoc:
    point_id: str
    text: str
    payload: dict


@dataclass(frozen=True)
class Hit:
    score: float | None  # None: found by browsing (filters only)
    kind: str
    album_id: int | None
    channel_id: int
    message_id: int | None
    posted_at: str
    text: str
    labels: list[str]


def utc_iso(moment: datetime) -> str:
    """ISO 8601 in UTC: the one string form of timestamps in Qdrant and the graph (ordered as text)."""
    return moment.astimezone(UTC).isoformat()


def timestamp_fields(posted_at: datetime) -> dict:
    return {"posted_at": utc_iso(posted_at), "posted_ts": int(posted_at.timestamp())}


class QdrantIndex:
    """Writes and searches the collection through a ``QdrantClient`` (server or local mode)."""

    def __init__(self, client: QdrantClient, collection: str, embedder: Embedder):
        self.client = client
        self.collection = collection
        self.embedder = embedder

    def ensure_collection(self) -> None:
        if not self.client.collection_exists(self.collection):
            self.client.create_collection(
                self.collection,
                vectors_config=models.VectorParams(size=self.embedder.dim, distance=models.Distance.COSINE),
                metadata={"embedding": self.embedder.key},
            )
            # Payload indexes make filtered search fast on a server. Local mode (path=/:memory:)
            # accepts and ignores them: it scans payloads.
            for field, schema in (("album_id", models.PayloadSchemaType.INTEGER),
                                  ("tenant_ids", models.PayloadSchemaType.KEYWORD),
                                  ("channel_id", models.PayloadSchemaType.INTEGER),
                                  ("kind", models.PayloadSchemaType.KEYWORD),
                                  ("labels", models.PayloadSchemaType.KEYWORD),
                                  ("posted_ts", models.PayloadSchemaType.INTEGER)):
                self.client.create_payload_index(self.collection, field, field_schema=schema)
            log.info("created Qdrant collection %s (%d-d, %s)", self.collection, self.embedder.dim, self.embedder.key)
            return
        self._check_embedding()

    def require_collection(self) -> None:
        """For readers (search): the collection must exist already; reading never creates an empty one."""
        if not self.client.collection_exists(self.collection):
            raise LookupError(f"Qdrant has no collection {self.collection!r}: the telegram_albums DAG creates it "
                              "when it first indexes; check --collection (setting qdrant_collection) and the Qdrant "
                              "location (--qdrant-path or connection albums_qdrant)")
        self._check_embedding()

    def _check_embedding(self) -> None:
        info = self.client.get_collection(self.collection)
        size = info.config.params.vectors.size
        stored = (info.config.metadata or {}).get("embedding")
        if size != self.embedder.dim or (stored and stored != self.embedder.key):
            raise IndexMismatch(
                f"Qdrant collection {self.collection!r} holds {size}-d vectors from {stored or 'an unknown provider'}, "
                f"but the configured embedding provider is {self.embedder.key} ({self.embedder.dim}-d). Mixing them "
                "would corrupt search: set qdrant_collection to a new name and reindex, or switch the provider back"
            )

    def upsert(self, docs: Sequence[IndexDoc]) -> int:
        """Write a point per document, text or not: one without text (a photo album with no
        caption and no OCR) is embedded from what it is (``describe``) and marked
        ``has_text: false``, so filters and browsing find it and the score floor keeps it out of
        searches for words it does not hold."""
        if not docs:
            return 0
        vectors = self.embedder.embed_documents([d.text if d.text.strip() else describe(d.payload) for d in docs])
        self.client.upsert(self.collection, points=[
            models.PointStruct(id=d.point_id, vector=list(v), payload={
                **d.payload, "text": d.text[:TEXT_PAYLOAD_CHARS], "has_text": bool(d.text.strip())})
            for d, v in zip(docs, vectors, strict=True)
        ])
        return len(docs)

    def prune_album_posts(self, album_id: int, keep_point_ids: Sequence[str]) -> None:
        """Delete post points of ``album_id`` that are no longer its items."""
        self.client.delete(self.collection, points_selector=models.FilterSelector(filter=models.Filter(
            must=[_match("album_id", album_id), _match("kind", "post")],
            must_not=[models.HasIdCondition(has_id=list(keep_point_ids))] if keep_point_ids else [],
        )))

    def delete_points(self, point_ids: Sequence[str]) -> None:
        if point_ids:
            self.client.delete(self.collection, points_selector=models.PointIdsList(points=list(point_ids)))

    def delete_album(self, album_id: int) -> None:
        """Delete the album's point and its item post points."""
        self.client.delete(self.collection, points_selector=models.FilterSelector(
            filter=models.Filter(must=[_match("album_id", album_id)])))

    def points_dated(self, since: datetime, until: datetime) -> dict[str, dict]:
        """Id -> payload (without text) of every point whose post or album is dated in [since, until)."""
        found: dict[str, dict] = {}
        window = models.Filter(must=[models.FieldCondition(key="posted_ts", range=models.Range(
            gte=int(since.timestamp()), lt=int(until.timestamp())))])
        offset = None
        while True:
            points, offset = self.client.scroll(self.collection, scroll_filter=window, limit=1000, offset=offset,
                                                with_payload=models.PayloadSelectorExclude(exclude=["text"]),
                                                with_vectors=False)
            found.update({str(p.id): p.payload for p in points})
            if offset is None:
                return found

    def search(self, tenant_id: str, query: str, *, album_id: int | None = None, kind: str | None = None,
               outside_albums: bool = False, labels: Sequence[str] | None = None, channel_id: int | None = None,
               extra: models.Filter | None = None, limit: int = 10) -> list[Hit]:
        """Semantic search, always within ``tenant_id``; whatever ``extra`` says cannot widen that.

        Hits below the embedder's ``score_floor`` are no match: a query that matches nothing gets
        no hits, not ten unrelated ones. An album is one hit, its best-matching point (the album's
        own or one of its posts'); within one album (``album_id``), its points are the hits.
        """
        if not query.strip():
            raise ValueError("empty query: give the words to search for")
        where = _tenant_filter(tenant_id, album_id=album_id, kind=kind, outside_albums=outside_albums, labels=labels,
                               channel_id=channel_id, extra=extra)
        vector = self.embedder.embed_queries([query])[0]
        per_album = album_id is None
        response = self.client.query_points(
            self.collection, query=list(vector), limit=limit * ALBUM_POINTS_PER_HIT if per_album else limit,
            with_payload=True, score_threshold=self.embedder.score_floor or None, query_filter=where)
        hits, albums_seen = [], set()
        for point in response.points:  # best first
            album = point.payload.get("album_id")
            if per_album and album is not None:
                if album in albums_seen:
                    continue
                albums_seen.add(album)
            hits.append(_hit(point, round(point.score, 4)))
        return hits[:limit]

    def browse(self, tenant_id: str, *, album_id: int | None = None, kind: str | None = None,
               labels: Sequence[str] | None = None, channel_id: int | None = None, limit: int = 50) -> list[Hit]:
        """The points the filters select, newest first, no query: how a text-less album is found
        (by its ``album_id``, labels, channel). Always within ``tenant_id``."""
        where = _tenant_filter(tenant_id, album_id=album_id, kind=kind, labels=labels, channel_id=channel_id)
        points, offset = [], None
        while True:
            page, offset = self.client.scroll(self.collection, scroll_filter=where, limit=256, offset=offset,
                                              with_payload=True)
            points.extend(page)
            if offset is None:
                break
        points.sort(key=lambda p: p.payload.get("posted_at", ""), reverse=True)
        return [_hit(p, None) for p in points[:limit]]


# Candidates asked of Qdrant per hit returned when hits are collapsed per album (an album is its
# point and up to 10 item posts; the best of them stands for it).
ALBUM_POINTS_PER_HIT = 4


def describe(payload: dict) -> str:
    """What a point without text is, in words (its kind and vision labels): its honest vector."""
    return f"{payload.get('kind', 'post')}: {', '.join(payload.get('labels') or []) or 'no text'}"


def _tenant_filter(tenant_id: str, *, album_id: int | None = None, kind: str | None = None,
                   outside_albums: bool = False, labels: Sequence[str] | None = None, channel_id: int | None = None,
                   extra: models.Filter | None = None) -> models.Filter:
    must: list[Any] = [_match("tenant_ids", validate_tenant_id(tenant_id))]
    must_not: list[Any] = []
    if album_id is not None:
        must.append(_match("album_id", album_id))
    if kind is not None:
        must.append(_match("kind", kind))
    if channel_id is not None:
        must.append(_match("channel_id", channel_id))
    if labels:
        must.extend(_match("labels", label.strip().lower()) for label in labels)
    if outside_albums:  # posts that have no album_id at all: excluded by Qdrant, not in Python
        must.append(_match("kind", "post"))
        must_not.append(models.FieldCondition(key="album_id", range=models.Range(gte=0)))
    if extra is not None:
        must.append(extra)  # nested: the caller's conditions narrow, never replace, the tenant filter
    return models.Filter(must=must, must_not=must_not or None)


def _hit(point: Any, score: float | None) -> Hit:
    return Hit(score=score, kind=point.payload["kind"], album_id=point.payload.get("album_id"),
               channel_id=point.payload["channel_id"], message_id=point.payload.get("message_id"),
               posted_at=point.payload["posted_at"], text=point.payload.get("text", ""),
               labels=point.payload.get("labels", []))


def _match(key: str, value: Any) -> models.FieldCondition:
    return models.FieldCondition(key=key, match=models.MatchValue(value=value))
