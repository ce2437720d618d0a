"""Per-album processing: vision → summary → enrichment (the album's life: ``domain/lifecycle.py``).

Each step reads what it needs from Postgres and leaves its output there, so each is a
separately retryable task and a rerun finds its work already done:

* ``analyse_album`` runs vision for the items whose image is not in the cache yet;
* ``summarize_album`` aggregates the items in position order once every vision-eligible item
  has a result or a terminal skip — or, after ``assembly_timeout_minutes`` since the
  composition last changed, as ``partial`` (completed by a later run);
* ``enrich_album`` publishes: one S3 summary per subscribed tenant, then the album's
  enrichment and state in Postgres, then the Redis ``album_seen`` hint for downstream readers.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import psycopg
from psycopg.types.json import Jsonb

from include.album.domain.lifecycle import Album, AlbumState, StepOutcome, transition
from include.album.domain.summary import ItemVision, aggregate
from include.album.providers.vision import UnusableImage, VisionProvider
from include.album.steps import metrics
from include.album.stores import db
from include.album.stores.media import MediaStore, summary_key

if TYPE_CHECKING:
    from redis import Redis

log = logging.getLogger(__name__)

ALBUM_SEEN_TTL_SECONDS = 24 * 3600
IMAGE_DOCUMENT_MIMES = ("image/jpeg", "image/png", "image/webp", "image/gif", "image/bmp", "image/tiff")


def load_album(conn: psycopg.Connection, album_id: int) -> Album:
    row = db.fetch_one(conn, "album_get", {"album_id": album_id})
    if row is None:
        raise LookupError(f"album {album_id} does not exist (deleted, or the id is wrong)")
    return Album(**{**row, "state": AlbumState(row["state"])})


@contextmanager
def albums_locked(conn: psycopg.Connection, album_ids: Sequence[int]) -> Iterator[list[Album]]:
    """The albums as they are now, held against every other writer of their enrichment or index
    (the other DAG, another worker) until the block ends: one transaction, per-album advisory
    locks taken in id order. What a writer publishes is then always of the composition it read."""
    ids = sorted(set(album_ids))
    with conn.transaction():
        db.execute(conn, "albums_lock", {"album_ids": ids})
        yield [load_album(conn, album_id) for album_id in ids]


class AlbumSeen:
    """Redis ``album_seen:{channel_id}:{grouped_id}`` = the content hash of the album's last assembled
    composition, written when it is published: a hint for readers outside the pipeline (the
    replaced system's consumers read it). The pipeline itself never reads it: Postgres decides
    what is done (``Album.is_assembled``). A Redis outage costs one warning: after the first
    failure this object stops writing.
    """

    def __init__(self, client: Redis | None):
        self.client = client

    @staticmethod
    def key(album: Album) -> str:
        return f"album_seen:{album.channel_id}:{album.grouped_id}"

    def remember(self, album: Album) -> None:
        if self.client is None:
            return
        try:
            self.client.set(self.key(album), album.content_hash, ex=ALBUM_SEEN_TTL_SECONDS)
        except Exception as exc:  # noqa: BLE001 - any Redis failure: the hint is skipped
            log.warning("Redis unavailable (%s); album_seen hints not written for the rest of this task", exc)
            self.client = None


@dataclass(frozen=True)
class VisionInput:
    """The image vision looks at for an item, or why the item has none (a terminal skip);
    neither: the media is still to come (fetched again by a later pull), the item is pending."""

    sha256: str | None = None
    s3_key: str | None = None
    skip_reason: str | None = None


def vision_input(item: dict) -> VisionInput:
    kind, mime = item["media_kind"], item["mime"] or ""
    if kind is None:
        return VisionInput(skip_reason="no_media")
    if not item["sha256"] and item["media_pending"]:  # a later pull fetches it again
        return VisionInput()
    if kind in ("video", "gif"):
        if item["thumb_sha256"]:
            return VisionInput(item["thumb_sha256"], item["thumb_s3_key"])  # analysed through its preview
        if item["sha256"] and item["preview_pending"]:
            return VisionInput()
        return VisionInput(skip_reason="no_thumbnail" if item["sha256"] else
                           f"media_not_stored:{item['media_skip_reason'] or 'unknown'}")
    if not item["sha256"]:
        return VisionInput(skip_reason=f"media_not_stored:{item['media_skip_reason'] or 'unknown'}")
    if kind == "photo" or mime in IMAGE_DOCUMENT_MIMES:
        return VisionInput(item["sha256"], item["s3_key"])
    return VisionInput(skip_reason=f"not_an_image:{mime or kind}")


def analyse_album(conn: psycopg.Connection, store: MediaStore, provider: VisionProvider,
                  album: Album) -> StepOutcome:
    """Vision for every item image of the album not analysed yet by this provider version:
    ``DONE``, or ``PENDING`` while an item's media is still to come."""
    items = db.fetch_all(conn, "album_items_for_vision", {"album_id": album.id})
    counts = analyse_images(conn, store, provider,
                            [(f"{album.label} item {item['position']}", vision_input(item)) for item in items])
    log.info("%s vision: %s", album.label, counts)
    return StepOutcome.PENDING if counts["pending"] else StepOutcome.DONE


def analyse_images(conn: psycopg.Connection, store: MediaStore, provider: VisionProvider,
                   targets: Sequence[tuple[str, VisionInput]]) -> dict[str, int]:
    """Analyse each distinct image once per provider version; results and terminal skips are cached."""
    shas = sorted({t.sha256 for _, t in targets if t.sha256})
    cached = {r["sha256"] for r in db.fetch_all(conn, "vision_cached", {"provider_key": provider.key,
                                                                        "shas": shas})}
    counts = {"analysed": 0, "cached": 0, "skipped": 0, "pending": 0}
    for where, target in targets:
        if target.sha256 is None:
            counts["skipped" if target.skip_reason else "pending"] += 1
            continue
        if target.sha256 in cached:
            counts["cached"] += 1
            continue
        try:
            data = store.get(target.s3_key)
        except Exception as exc:  # noqa: BLE001 - the item stays pending; its album may go partial
            log.warning("%s: cannot read %s from S3 (%s); left pending", where, target.s3_key, exc)
            metrics.incr("album_vision_calls_total", label="pending")
            counts["pending"] += 1
            continue
        started = time.monotonic()
        row = {"sha256": target.sha256, "provider_key": provider.key, "result": None, "skip_reason": None,
               "skip_detail": None}
        try:
            row["result"] = Jsonb(provider.analyse(data))
            metrics.incr("album_vision_calls_total", label="ok")
        except UnusableImage as exc:
            row["skip_reason"], row["skip_detail"] = exc.reason, exc.detail
            log.warning("%s (%s): %s", where, target.sha256[:12], exc.detail)
            metrics.incr("album_vision_calls_total", label="skipped")
        row["duration_ms"] = int((time.monotonic() - started) * 1000)
        db.execute(conn, "vision_store", row)
        cached.add(target.sha256)
        counts["analysed"] += 1
    return counts


def item_outcomes(conn: psycopg.Connection, album: Album, provider_key: str) -> list[ItemVision]:
    items = db.fetch_all(conn, "album_items_for_vision", {"album_id": album.id})
    inputs = {item["position"]: vision_input(item) for item in items}
    shas = sorted({i.sha256 for i in inputs.values() if i.sha256})
    results = {r["sha256"]: r for r in db.fetch_all(conn, "vision_cached", {"provider_key": provider_key,
                                                                            "shas": shas})}
    outcomes = []
    for item in items:
        target = inputs[item["position"]]
        cached = results.get(target.sha256) if target.sha256 else None
        outcomes.append(ItemVision(
            position=item["position"], message_id=item["message_id"],
            result=cached["result"] if cached else None,
            skip_reason=target.skip_reason or (cached["skip_reason"] if cached else None),
        ))
    return outcomes


def summarize_album(conn: psycopg.Connection, album: Album, provider_key: str, timeout: timedelta,
                    now: datetime) -> StepOutcome:
    """Aggregate when complete (or timed out): ``ASSEMBLED``, ``PARTIAL``, or ``WAITING`` before the timeout."""
    outcomes = item_outcomes(conn, album, provider_key)
    pending = [o.position for o in outcomes if not o.done]
    if pending and now - album.composed_at < timeout:
        log.info("%s: items %s have no vision result yet; waiting (partial after %s)", album.label, pending, timeout)
        return StepOutcome.WAITING
    state = AlbumState.PARTIAL if pending else AlbumState.ASSEMBLED
    started = time.perf_counter()
    summary = aggregate(outcomes, posted_at=album.posted_at, assembled_at=now, partial=bool(pending))
    metrics.observe("album_aggregation_duration_ms", (time.perf_counter() - started) * 1000)
    summary["items"] = [{"position": o.position, "message_id": o.message_id, "status": o.status,
                         "skip_reason": o.skip_reason if not o.result else None} for o in outcomes]
    with conn.transaction():
        db.execute(conn, "album_summary_upsert", {"album_id": album.id, "content_hash": album.content_hash,
                                                  "provider_key": provider_key, "status": state,
                                                  "summary": Jsonb(summary)})
    log.info("%s summary: %s, %d analysed, %d skipped, %d pending", album.label, state,
             summary["items_analyzed"], summary["items_skipped"], len(pending))
    return StepOutcome(state)


def write_summaries(store: MediaStore, album: Album, summary: dict, tenants: Sequence[str]) -> dict[str, str]:
    """One S3 summary document per subscribed tenant; returns tenant id -> key."""
    keys = {}
    for tenant_id in tenants:
        key = summary_key(tenant_id, album.id)
        document = {"album_id": album.id, "channel_id": album.channel_id, "grouped_id": album.grouped_id,
                    "tenant_id": tenant_id, "content_hash": album.content_hash, **summary}
        metrics.observe("album_vision_summary_size_bytes", store.put_json(key, document))
        keys[tenant_id] = key
    return keys


def enrich_album(conn: psycopg.Connection, store: MediaStore, seen: AlbumSeen, album: Album) -> dict | None:
    """Publish the album's summary (S3 per tenant, then Postgres, then Redis); None if nothing to publish.

    Under the album's lock (``albums_locked``): the S3 summaries, which have one key per album
    and tenant, are only written for the composition the album has at that moment."""
    with albums_locked(conn, [album.id]) as [current]:
        if current.content_hash != album.content_hash:
            log.info("%s changed since this step began; the next step or run publishes the new composition",
                     album.label)
            return None
        row = db.fetch_one(conn, "album_summary_get", {"album_id": album.id})
        if row is None or row["content_hash"] != album.content_hash:
            log.info("%s: no summary for the current composition yet; nothing published", album.label)
            return None
        state = transition(album.id, current.state, AlbumState(row["status"]))
        summary = row["summary"]
        tenants = [r["tenant_id"] for r in db.fetch_all(conn, "album_tenants", {"album_id": album.id})]
        keys = write_summaries(store, album, summary, tenants)  # S3 first: Postgres never points at a missing object
        enrichment = {**summary, "content_hash": album.content_hash, "s3_keys": keys,
                      "provider_key": row["provider_key"]}
        updated = db.execute(conn, "album_enrich", {"album_id": album.id, "content_hash": album.content_hash,
                                                    "state": state, "enrichment": Jsonb(enrichment),
                                                    "enriched_at": summary["assembled_at"]})
    if not updated:  # recomposed by a pull meanwhile: its writer publishes the new composition
        log.info("%s changed while it was being enriched; the next run publishes the new composition", album.label)
        return None
    metrics.incr("albums_assembled_total", label="ok" if state is AlbumState.ASSEMBLED else "partial")
    metrics.observe("album_assembly_lag_seconds", summary["assembly_lag_seconds"])
    if state is AlbumState.ASSEMBLED:
        seen.remember(album)
    log.info("%s enriched (%s) for tenants %s", album.label, state, ", ".join(tenants) or "none")
    return enrichment
