"""Reindex: rebuild a Qdrant collection's points (and the graph's album nodes) from Postgres and
S3, without asking Telegram anything.

The way to move to the hybrid schema, to change the embedding model, or to rebuild a lost Qdrant.
The points are those the DAG writes (``AlbumIndexer.write``, ``loose_post_documents``: the same
code), so a reindexed collection equals the DAG's. A pass goes in batches (albums in id order,
then posts outside albums in key order) and records after each where it is (table
``reindex_passes``, per collection and scope): an interrupted pass resumes there; the pass after
a finished one is a catch-up that rewrites only what the DAG indexed since the previous pass
began. Every pass ends with a sweep that deletes the collection's points of what is gone
(deleted posts and albums, items no longer in their album) and gives renamed channels their
names. Writes take the same locks as the DAG's (``albums_locked``, ``loose_posts_lock``), so the
DAG keeps running meanwhile; docs/search.md says how to switch it to a new collection.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import psycopg

from include.album.providers.vision import VisionProvider
from include.album.steps.assembly import albums_locked
from include.album.steps.indexing import AlbumIndexer, loose_post_documents
from include.album.stores import db
from include.album.stores.media import MediaStore
from include.album.stores.qdrant import album_point_id, post_point_id

log = logging.getLogger(__name__)

ALBUMS_PER_BATCH = 50    # albums locked and embedded at once (their posts come with them)
POSTS_PER_BATCH = 500


@dataclass(frozen=True)
class ReindexResult:
    collection: str
    scope: str              # "" = every channel, else a tenant id
    catch_up: bool          # only what the DAG indexed since the previous pass began
    resumed: bool           # went on from where an interrupted pass stopped
    albums: int
    posts: int
    points_deleted: int
    channels_renamed: int
    seconds: float


def reindex(conn: psycopg.Connection, store: MediaStore, provider: VisionProvider, indexer: AlbumIndexer, *,
            tenant: str | None = None, full: bool = False,
            progress: Callable[[str], None] = log.info) -> ReindexResult:
    """One pass into ``indexer.qindex``'s collection (created with the current schema if new):
    the channels ``tenant`` reads, or every channel; ``full`` rewrites everything even when a
    previous pass finished (else only what changed since it began)."""
    started = time.monotonic()
    qindex = indexer.qindex
    qindex.ensure_collection()
    if indexer.graph is not None:
        indexer.graph.ensure_schema()
    channels = db.fetch_all(conn, "channels_in_scope", {"tenant_id": tenant})
    if tenant is not None and not channels:
        raise LookupError(f"tenant {tenant} reads no channel: nothing to reindex")
    channel_ids = [c["id"] for c in channels]
    key = {"collection": qindex.collection, "scope": tenant or ""}
    pass_, resumed = _pass(conn, key, full)
    since = pass_["since"]
    progress(f"reindex into {qindex.collection} ({'tenant ' + tenant if tenant else 'every channel'}): "
             + ("resuming the interrupted pass" if resumed else
                f"catching up on what was indexed since {since:%Y-%m-%d %H:%M:%S %Z}" if since else "a full pass"))
    albums, posts = pass_["albums_written"], pass_["posts_written"]
    after = pass_["albums_after"]
    while batch := [r["id"] for r in db.fetch_all(conn, "reindex_albums", {
            "channel_ids": channel_ids, "after": after, "since": since, "limit": ALBUMS_PER_BATCH})]:
        with albums_locked(conn, batch) as current:
            indexer.write([a for a in current if a.is_enriched and a.deleted_at is None])
        albums, after = albums + len(batch), batch[-1]
        _save(conn, key, pass_, albums_after=after, albums_written=albums)
        progress(f"albums: {albums} written (up to id {after})")
    post_after = (pass_["posts_after_channel"], pass_["posts_after_message"])
    while True:
        with conn.transaction():
            db.execute(conn, "loose_posts_lock")
            rows = db.fetch_all(conn, "reindex_posts", {
                "channel_ids": channel_ids, "after_channel": post_after[0], "after_message": post_after[1],
                "since": since, "limit": POSTS_PER_BATCH})
            qindex.upsert(loose_post_documents(conn, store, provider, rows))
        if not rows:
            break
        posts, post_after = posts + len(rows), (rows[-1]["channel_id"], rows[-1]["message_id"])
        _save(conn, key, pass_, posts_after=post_after, posts_written=posts)
        progress(f"posts outside albums: {posts} written")
    renamed = sum(qindex.rename_channel(c["id"], c["username"], c["title"]) > 0
                  for c in channels if _names_differ(qindex, c))
    deleted = sweep(conn, qindex, channel_ids)
    with conn.transaction():
        db.execute(conn, "reindex_pass_finish", key)
    result = ReindexResult(qindex.collection, key["scope"], since is not None, resumed, albums, posts, deleted,
                           renamed, round(time.monotonic() - started, 1))
    progress(f"reindex into {qindex.collection} done: {albums} albums and {posts} posts outside albums written, "
             f"{deleted} points of what is gone deleted, {renamed} renamed channels updated, {result.seconds} s")
    return result


def _pass(conn: psycopg.Connection, key: dict, full: bool) -> tuple[dict, bool]:
    """The pass to run and whether it resumes an interrupted one."""
    previous = db.fetch_one(conn, "reindex_pass_get", key)
    if previous is not None and previous["finished_at"] is None and not full:
        return previous, True
    since = previous["started_at"] if previous is not None and not full else None
    with conn.transaction():
        return db.fetch_one(conn, "reindex_pass_start", {**key, "since": since}), False


def _save(conn: psycopg.Connection, key: dict, pass_: dict, *, albums_after: int | None = None,
          albums_written: int | None = None, posts_after: tuple[int, int] | None = None,
          posts_written: int | None = None) -> None:
    if albums_after is not None:
        pass_.update(albums_after=albums_after, albums_written=albums_written)
    if posts_after is not None:
        pass_.update(posts_after_channel=posts_after[0], posts_after_message=posts_after[1],
                     posts_written=posts_written)
    with conn.transaction():
        db.execute(conn, "reindex_pass_progress", {**key, **{k: pass_[k] for k in (
            "albums_after", "posts_after_channel", "posts_after_message", "albums_written", "posts_written")}})


def _names_differ(qindex, channel: dict) -> bool:
    """Whether the collection's points of ``channel`` carry other names than the table's."""
    from qdrant_client import models

    points, _ = qindex.client.scroll(qindex.collection, limit=1, with_payload=["channel_username", "channel_title"],
                                     scroll_filter=models.Filter(must=[models.FieldCondition(
                                         key="channel_id", match=models.MatchValue(value=channel["id"]))]))
    return bool(points) and (points[0].payload.get("channel_username"), points[0].payload.get("channel_title")) \
        != (channel["username"], channel["title"])


def sweep(conn: psycopg.Connection, qindex, channel_ids: Sequence[int]) -> int:
    """Delete the points of ``channel_ids`` that stand for nothing any more: deleted posts and
    albums, posts no longer items of their album, posts that joined an album. Returns how many.

    The points are listed before Postgres is asked what lives: a point the DAG writes meanwhile
    is not listed, and one it wrote before is of an album enriched (or, under the lock held
    here, a post marked indexed) before the question."""
    with conn.transaction():
        db.execute(conn, "loose_posts_lock")
        points = qindex.point_ids_of_channels(channel_ids)
        live = set()
        for row in db.fetch_all(conn, "reindex_live_points", {"channel_ids": list(channel_ids)}):
            live.add(album_point_id(row["album_id"]) if row["kind"] == "album"
                     else post_point_id(row["channel_id"], row["message_id"]))
        gone = [point for point in points if point not in live]
        qindex.delete_points(gone)
    if gone:
        log.info("reindex sweep: deleted %d points of what is gone from %s", len(gone), qindex.collection)
    return len(gone)
