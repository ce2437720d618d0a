"""Qdrant: one collection of post and album points, always searched within a tenant.

Point ids are deterministic (UUIDv5 of ``post:<channel>:<message>`` / ``album:<id>``), so a
rerun overwrites instead of duplicating. Payload: ``kind`` (post|album), ``album_id`` (int,
absent for posts outside albums), ``position`` (a post's place in its album), ``channel_id``,
``channel_username``, ``channel_title``, ``tenant_ids``, ``posted_at`` (ISO) and ``posted_ts``
(epoch seconds, for ranges), ``labels``, ``text``, ``has_text``.

Each point has two vectors (hybrid search): ``dense``, the embedding of its text, and
``lexical``, the terms of its searchable words (``searchable_words``: the text, the channel's
title and @username, and for a point without text its kind and labels) weighted by Qdrant's IDF
modifier. A search fuses both in one Query API call; a collection of the older schema (one
unnamed dense vector) is still written and searched, dense only, until it is reindexed.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
from qdrant_client import QdrantClient, models

from include.album.domain.models import validate_tenant_id
from include.album.providers import lexical
from include.album.providers.embeddings import Embedder
from include.album.stores import qdrant_local

log = logging.getLogger(__name__)
qdrant_local.speed_up()  # local mode's filter masks and sparse scores, same answers (qdrant_local.py)

POINT_NAMESPACE = uuid.UUID("6f1f2c1e-3b7a-5d0e-9a51-7e1e6b2d4c10")
# The text kept in a point's payload, and the words of its lexical vector (rebuilt from the payload
# when a channel is renamed): more than any Telegram post holds (4,096 characters).
TEXT_PAYLOAD_CHARS = 10_000
DENSE, LEXICAL = "dense", "lexical"
# Hybrid search: the Query API merges the dense and the lexical candidates (FUSION); each is then
# scored by meaning (cosine) plus WORDS_WEIGHT × the share of the query's terms it holds, and kept
# when it holds at least MIN_SHARE of them (a "minimum should match") or its score clears the
# embedder's floor. Measured against ranking by RRF or DBSF alone: `python -m devtools embeddings`.
FUSION = models.Fusion.RRF
WORDS_WEIGHT = 0.2
MIN_SHARE = 0.5


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
    channel_username: str | None
    message_id: int | None
    position: int | None  # a post's place in its album
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
        self._hybrid: bool | None = None  # read from the collection on first use

    def ensure_collection(self) -> None:
        if not self.client.collection_exists(self.collection):
            self.client.create_collection(
                self.collection,
                vectors_config={DENSE: models.VectorParams(size=self.embedder.dim, distance=models.Distance.COSINE)},
                sparse_vectors_config={LEXICAL: models.SparseVectorParams(modifier=models.Modifier.IDF)},
                metadata={"embedding": self.embedder.key, "lexical": lexical.KEY},
            )
            # Payload indexes make filtered search fast on a server. Local mode (path=/:memory:)
            # accepts and ignores them: it scans payloads.
            for field, schema in (("album_id", models.PayloadSchemaType.INTEGER),
                                  ("tenant_ids", models.PayloadSchemaType.KEYWORD),
                                  ("channel_id", models.PayloadSchemaType.INTEGER),
                                  ("kind", models.PayloadSchemaType.KEYWORD),
                                  ("labels", models.PayloadSchemaType.KEYWORD),
                                  ("has_text", models.PayloadSchemaType.BOOL),
                                  ("posted_ts", models.PayloadSchemaType.INTEGER)):
                self.client.create_payload_index(self.collection, field, field_schema=schema)
            log.info("created Qdrant collection %s (%d-d %s, lexical %s)", self.collection, self.embedder.dim,
                     self.embedder.key, lexical.KEY)
        self._check_schema()

    def require_collection(self) -> None:
        """For readers (search): the collection must exist already; reading never creates an empty one."""
        if not self.client.collection_exists(self.collection):
            raise LookupError(f"Qdrant has no collection {self.collection!r}: the telegram_albums DAG creates it "
                              "when it first indexes; check --collection (setting qdrant_collection) and the Qdrant "
                              "location (--qdrant-path or connection albums_qdrant)")
        self._check_schema()

    @property
    def hybrid(self) -> bool:
        """Whether the collection has the lexical vector (else: the older, dense-only schema)."""
        if self._hybrid is None:
            self._check_schema()
        return bool(self._hybrid)

    def _check_schema(self) -> None:
        info = self.client.get_collection(self.collection)
        vectors, metadata = info.config.params.vectors, info.config.metadata or {}
        named = isinstance(vectors, dict)
        size = vectors[DENSE].size if named else vectors.size
        stored = metadata.get("embedding")
        if size != self.embedder.dim or (stored and stored != self.embedder.key):
            raise IndexMismatch(
                f"Qdrant collection {self.collection!r} holds {size}-d vectors from {stored or 'an unknown provider'}, "
                f"but the configured embedding provider is {self.embedder.key} ({self.embedder.dim}-d). Mixing them "
                f"would corrupt search: {REINDEX_HINT}, or switch the provider back")
        self._hybrid = named and LEXICAL in (info.config.params.sparse_vectors or {})
        if self._hybrid and metadata.get("lexical") != lexical.KEY:
            raise IndexMismatch(f"Qdrant collection {self.collection!r} holds lexical vectors of "
                                f"{metadata.get('lexical')}, this version makes {lexical.KEY}: {REINDEX_HINT}")
        if not self._hybrid:
            log.warning("Qdrant collection %s has the dense-only schema: search misses words that stand verbatim "
                        "in a text; %s", self.collection, REINDEX_HINT)

    def upsert(self, docs: Sequence[IndexDoc]) -> int:
        """Write a point per document, text or not. One without text (a photo album with no
        caption and no OCR) is marked ``has_text: false``: filters and browsing find it, and
        search finds it by its kind, labels or channel (its lexical words) but never by meaning:
        it has no dense vector (in a collection of the older schema, the embedding of what it
        is, ``describe``, below the score floor of free text)."""
        if not docs:
            return 0
        payloads = [{**d.payload, "text": d.text[:TEXT_PAYLOAD_CHARS], "has_text": bool(d.text.strip())} for d in docs]
        embedded = [n for n, payload in enumerate(payloads) if payload["has_text"] or not self.hybrid]
        dense = dict(zip(embedded, self.embedder.embed_documents(
            [docs[n].text if payloads[n]["has_text"] else describe(payloads[n]) for n in embedded]), strict=True))
        self.client.upsert(self.collection, points=[
            models.PointStruct(id=doc.point_id, vector=self._vectors(dense.get(n), payload), payload=payload)
            for n, (doc, payload) in enumerate(zip(docs, payloads, strict=True))])
        return len(docs)

    def _vectors(self, dense: Sequence[float] | None, payload: dict) -> Any:
        if not self.hybrid:
            return list(dense or ())
        vectors: dict[str, Any] = {DENSE: list(dense)} if dense is not None else {}
        indices, values = lexical.document_vector(searchable_words(payload))
        if indices:
            vectors[LEXICAL] = models.SparseVector(indices=indices, values=values)
        return vectors

    def rename_channel(self, channel_id: int, username: str | None, title: str | None) -> int:
        """Give a renamed channel's points its new names: payload and lexical vector (rebuilt from
        the payload, as ``upsert`` builds it), without embedding anything again. Returns how many."""
        names = {"channel_username": username, "channel_title": title}
        where = models.Filter(must=[_match("channel_id", channel_id)])
        self.client.set_payload(self.collection, payload=names, points=where)
        if not self.hybrid:
            return 0
        renamed, offset = 0, None
        while True:
            points, offset = self.client.scroll(self.collection, scroll_filter=where, limit=256, offset=offset,
                                                with_payload=True, with_vectors=False)
            updates = []
            for point in points:
                indices, values = lexical.document_vector(searchable_words(point.payload))
                updates.append(models.PointVectors(id=point.id, vector={
                    LEXICAL: models.SparseVector(indices=indices, values=values)}))
            if updates:
                self.client.update_vectors(self.collection, points=updates)
            renamed += len(updates)
            if offset is None:
                return renamed

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

    def point_ids_of_channels(self, channel_ids: Sequence[int]) -> list[str]:
        """The ids of every point of these channels."""
        where = models.Filter(must=[models.FieldCondition(key="channel_id", match=models.MatchAny(
            any=list(channel_ids)))])
        found: list[str] = []
        offset = None
        while True:
            points, offset = self.client.scroll(self.collection, scroll_filter=where, limit=1000, offset=offset,
                                                with_payload=False, with_vectors=False)
            found.extend(str(p.id) for p in points)
            if offset is None:
                return found

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
        """Hybrid search, always within ``tenant_id``; whatever ``extra`` says cannot widen that.

        Two candidate lists in one Query API call: the points holding the query's terms
        (lexical; rarer terms rank higher) and the points whose text means what the query means
        (dense). A hit's score is its meaning (cosine) plus ``WORDS_WEIGHT`` × the share of the
        query's terms it holds; a hit holding at least ``MIN_SHARE`` of them is always kept, any
        other must score at least the embedder's ``score_floor``. A point without text is found
        by its words only (kind, labels, channel), never by meaning. So a word that stands in a
        text is never cut by the floor, and a query that matches nothing gets no hits, not ten
        unrelated ones. An album is one hit, its best-matching point (the album's own or one of
        its posts'); within one album (``album_id``), its points are the hits. A collection of
        the older schema is searched by meaning alone.
        """
        if not query.strip():
            raise ValueError("empty query: give the words to search for")
        where = _tenant_filter(tenant_id, album_id=album_id, kind=kind, outside_albums=outside_albums, labels=labels,
                               channel_id=channel_id, extra=extra)
        vector = list(self.embedder.embed_queries([query])[0])
        per_album = album_id is None
        candidates = limit * ALBUM_POINTS_PER_HIT if per_album else limit
        floor = self.embedder.score_floor or None
        if self.hybrid:
            points = self._hybrid_candidates(query, vector, where, candidates, floor)
        else:
            points = self.client.query_points(self.collection, query=vector, query_filter=where, limit=candidates,
                                              score_threshold=floor, with_payload=True).points
        hits, albums_seen = [], set()
        for point in points:  # best first
            album = point.payload.get("album_id")
            if per_album and album is not None:
                if album in albums_seen:
                    continue
                albums_seen.add(album)
            hits.append(_hit(point, round(point.score, 4)))
        return hits[:limit]

    def _hybrid_candidates(self, query: str, vector: list[float], where: models.Filter, limit: int,
                           floor: float | None) -> list[Any]:
        """The points that match the query by words or by meaning, best first, each scored
        ``meaning + WORDS_WEIGHT × share of the query's terms it holds``."""
        dense = models.Prefetch(query=vector, using=DENSE, limit=limit,  # (a point without text has no dense vector)
                                score_threshold=floor - WORDS_WEIGHT if floor else None)
        indices, values = lexical.query_vector(query)
        prefetch = [dense]
        if indices:  # (a query of function words only has no terms)
            prefetch.append(models.Prefetch(query=models.SparseVector(indices=indices, values=values),
                                            using=LEXICAL, limit=limit))
        union = self.client.query_points(self.collection, prefetch=prefetch, query=models.FusionQuery(fusion=FUSION),
                                         query_filter=where, limit=limit * len(prefetch), with_payload=True,
                                         with_vectors=[DENSE]).points
        wanted = set(lexical.terms(query))
        kept = []
        for point in union:
            share = words_share(wanted, point.payload)
            has_meaning = bool(point.vector) and DENSE in point.vector
            score = (_cosine(vector, point.vector[DENSE]) if has_meaning else 0.0) + WORDS_WEIGHT * share
            if share >= MIN_SHARE or (has_meaning and score >= (floor or -1.0) - 1e-6):
                kept.append((point, score))
        return self._ranked(kept)

    @staticmethod
    def _ranked(kept: list[tuple[Any, float]]) -> list[Any]:
        """The kept candidates by their score, best first (the fused order breaks ties)."""
        kept = sorted(kept, key=lambda pair: -pair[1])
        for point, score in kept:
            point.score = score
        return [point for point, _ in kept]

    def browse(self, tenant_id: str, *, album_id: int | None = None, kind: str | None = None,
               labels: Sequence[str] | None = None, channel_id: int | None = None, limit: int = 50) -> list[Hit]:
        """The points the filters select, no query: how a text-less album is found (by its
        ``album_id``, labels, channel). Newest first; one album's: its point, then its posts in
        order. Always within ``tenant_id``."""
        where = _tenant_filter(tenant_id, album_id=album_id, kind=kind, labels=labels, channel_id=channel_id)
        points, offset = [], None
        while True:
            page, offset = self.client.scroll(self.collection, scroll_filter=where, limit=256, offset=offset,
                                              with_payload=True)
            points.extend(page)
            if offset is None:
                break
        if album_id is None:
            points.sort(key=lambda p: p.payload.get("posted_at", ""), reverse=True)
        else:
            points.sort(key=lambda p: (p.payload["kind"] != "album", p.payload.get("position", 0)))
        return [_hit(p, None) for p in points[:limit]]


# Candidates asked of Qdrant per hit returned when hits are collapsed per album (an album is its
# point and up to 10 item posts; the best of them stands for it).
ALBUM_POINTS_PER_HIT = 4


REINDEX_HINT = ("build a new collection with `python -m include.album reindex --collection NEW`, then set "
                "qdrant_collection to NEW (docs/search.md, \"Reindex\")")


def describe(payload: dict) -> str:
    """What a point without text is, in words (its kind and vision labels): its honest vector."""
    return f"{payload.get('kind', 'post')}: {', '.join(payload.get('labels') or []) or 'no text'}"


def searchable_words(payload: dict) -> str:
    """The words a point is found by lexically: its text and its channel's title and @username;
    a point without text also by its kind and labels, and by nothing else."""
    username = payload.get("channel_username")
    words = [payload.get("text") or "", payload.get("channel_title") or "", f"@{username}" if username else ""]
    if not payload.get("has_text"):
        words.extend([payload.get("kind") or "post", *(payload.get("labels") or [])])
    return "\n".join(word for word in words if word)


def words_share(wanted: set[str], payload: dict) -> float:
    """The share of a query's terms (``wanted``) that a point holds in its searchable words."""
    if not wanted:
        return 0.0
    return len(wanted & set(lexical.terms(searchable_words(payload)))) / len(wanted)


def _cosine(a: Sequence[float], b: Sequence[float]) -> float:
    a_, b_ = np.asarray(a, dtype=np.float32), np.asarray(b, dtype=np.float32)
    return float(a_ @ b_ / ((np.linalg.norm(a_) * np.linalg.norm(b_)) or 1.0))


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
               channel_id=point.payload["channel_id"], channel_username=point.payload.get("channel_username"),
               message_id=point.payload.get("message_id"), position=point.payload.get("position"),
               posted_at=point.payload["posted_at"], text=point.payload.get("text", ""),
               labels=point.payload.get("labels", []))


def _match(key: str, value: Any) -> models.FieldCondition:
    return models.FieldCondition(key=key, match=models.MatchValue(value=value))
