"""A pull's media: downloaded in the task that read the messages, S3 first, nothing lost.

``fetch_media`` reads messages into posts and gives each post with media one outcome: its
media stored (reused when its Telegram file id is stored already; a video's or GIF's preview
too), a terminal skip with its reason, or a ``MediaRetry`` — fetched again by a later run. What
Telegram answered decides which (``source.failures``):

* a wait (``FLOOD_WAIT``, ``FLOOD_PREMIUM_WAIT``, ...) is a retry due when it ends, not a try;
  the client keeps the session's download wait, so the pull's later downloads wait too without
  asking, and so do later runs (``steps.session``);
* an expired file reference is fetched again by id, ``FILE_REFERENCE_REFETCHES`` times in the
  pull, then it is a failed try;
* an error that may pass (5xx, timeouts, anything unclassified) is a failed try, fetched again
  after a backoff (``domain.retries``); after ``media_retry_tries`` tries over at least
  ``media_retry_hours`` it is given up: a skip ``download_failed`` (``thumbnail_failed`` for a
  preview) with the last error;
* Telegram saying the file is gone (``MEDIA_GONE``) is a skip ``media_gone`` at once;
* a refused session or channel is raised: the caller's policy stops the channel.

Media left to fetch again never cuts a pull: the post is stored, the mark moves on, and the
item's album waits for it (``assembly.vision_input``: pending, partial after the timeout).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import psycopg
from telethon import errors

from include.album.domain.models import (
    DOWNLOADABLE_KINDS,
    Channel,
    MediaPart,
    MediaRetry,
    Post,
    PostMedia,
    Skip,
    StoredMedia,
)
from include.album.domain.retries import gives_up, next_try
from include.album.domain.settings import Settings
from include.album.source.client import DOWNLOAD, PipelineClient, input_peer
from include.album.source.failures import Meaning, Wait, error_name, meaning
from include.album.source.messages import file_extension, read_messages
from include.album.source.pull import download
from include.album.steps import metrics
from include.album.stores import db
from include.album.stores.media import MediaStore

log = logging.getLogger(__name__)

# How often a file whose reference expired is fetched again by id within one pull.
FILE_REFERENCE_REFETCHES = 2
PREVIEW_KINDS = frozenset({"video", "gif"})  # vision looks at these through their preview


@dataclass
class Fetched:
    """What a pull brought: posts with their stored media, skips, media to fetch again, and the
    wait that stopped the pull of messages, if one did (the channel waits until it ends)."""

    posts: list[tuple[Post, PostMedia]] = field(default_factory=list)
    skips: list[Skip] = field(default_factory=list)
    retries: list[MediaRetry] = field(default_factory=list)
    wait: Wait | None = None


@dataclass(frozen=True)
class _Tried:
    tries: int
    first_failed_at: datetime


def _megabytes(size: int) -> str:
    if size < 1024 * 1024:
        return f"{size / 1024:.0f} KB"
    return f"{size / (1024 * 1024):.1f} MB"


def _wants_preview(post: Post, media: PostMedia) -> bool:
    ref = post.media
    return ref is not None and ref.has_thumb and ref.kind in PREVIEW_KINDS and media.thumb is None


def _known_media(conn: psycopg.Connection, file_ids: list[int]) -> dict[int, PostMedia]:
    known = {}
    for row in db.fetch_all(conn, "known_media", {"file_ids": file_ids}):
        thumb = None
        if row["thumb_sha256"]:
            thumb = StoredMedia(row["thumb_sha256"], row["thumb_mime"], row["thumb_size"], row["thumb_s3_key"],
                                row["thumb_width"], row["thumb_height"])
        known[row["media_file_id"]] = PostMedia(
            media=StoredMedia(row["sha256"], row["mime"], row["size_bytes"], row["s3_key"], row["width"],
                              row["height"]),
            thumb=thumb,
        )
    return known


async def fetch_media(conn: psycopg.Connection, client: PipelineClient, store: MediaStore, channel: Channel,
                      messages: list[Any], settings: Settings, fetched: Fetched, now: datetime | None = None) -> None:
    """Read ``messages`` into ``fetched``: posts with their media stored in S3, skips, retries."""
    posts, skips = read_messages(channel.id, messages)
    fetched.skips.extend(skips)
    with_media = [post for post, _ in posts if post.media is not None]
    file_ids = sorted({p.media.file_id for p in with_media if p.media.file_id is not None})
    known = _known_media(conn, file_ids) if file_ids else {}
    tried = {(r["message_id"], MediaPart(r["part"])): _Tried(r["tries"], r["first_failed_at"])
             for r in db.fetch_all(conn, "media_retries_of", {"channel_id": channel.id,
                                                              "message_ids": [p.message_id for p in with_media]})}
    downloads = _Downloads(client, store, channel, settings, tried, now or datetime.now(UTC), fetched)
    for post, message in posts:
        file_id = post.media.file_id if post.media else None
        media = known.get(file_id)
        if media is None:
            media = await downloads.media(post, message)
        else:
            media = PostMedia(media=media.media, thumb=media.thumb)
        if _wants_preview(post, media) and media.media is not None:
            media.thumb = await downloads.preview(post, message)
        if media.media is not None and file_id is not None:
            known[file_id] = media
        fetched.posts.append((post, media))


@dataclass
class _Downloads:
    """The downloads of one channel's pull, and what their failures become."""

    client: PipelineClient
    store: MediaStore
    channel: Channel
    settings: Settings
    tried: dict[tuple[int, MediaPart], _Tried]
    now: datetime
    fetched: Fetched

    async def media(self, post: Post, message: Any) -> PostMedia:
        """The post's file stored in S3, or why not (a terminal skip, or a retry in ``fetched``)."""
        ref = post.media
        where = f"channel {post.channel_id} message {post.message_id}"
        if ref is None:
            return PostMedia()
        if not ref.downloadable:
            if ref.kind in DOWNLOADABLE_KINDS:  # e.g. an expired self-destructing photo
                reason, detail = "media_unavailable", f"{where}: the {ref.kind} is no longer available on Telegram"
            else:
                reason, detail = "unsupported_media", (f"{where}: {ref.kind} media is not stored (only photos, "
                                                       "videos, GIFs and documents are)")
            return self._skip(post, reason, detail + "; the post text is stored")
        cap = self.settings.media_size_cap_bytes
        if ref.size is not None and ref.size > cap:
            return self._skip(post, "media_too_large", f"{where}: {ref.kind} of {_megabytes(ref.size)} exceeds the "
                              f"{_megabytes(cap)} cap (setting media_size_cap_bytes); the post is stored without "
                              "its media")
        try:
            data = await self._download(post, message)
        except errors.RPCError as exc:
            return self._failed(post, MediaPart.MEDIA, exc)
        if not data:
            return self._skip(post, "download_failed", f"{where}: Telegram returned no bytes for {ref.kind} "
                              f"{ref.file_id}")
        if len(data) > cap:
            return self._skip(post, "media_too_large", f"{where}: {ref.kind} of {_megabytes(len(data))} exceeds "
                              f"the {_megabytes(cap)} cap")
        self._stored_after_retry(post, MediaPart.MEDIA)
        return PostMedia(media=self.store.put_media(data, mime=ref.mime or "application/octet-stream",
                                                    extension=file_extension(ref.mime, ref.file_name),
                                                    width=ref.width, height=ref.height))

    async def preview(self, post: Post, message: Any) -> StoredMedia | None:
        """A video's or GIF's preview (what vision looks at) stored in S3, or None (a skip or a retry)."""
        try:
            data = await self._download(post, message, thumb=True)
        except errors.RPCError as exc:
            self._failed(post, MediaPart.PREVIEW, exc)
            return None
        if not data:
            return None
        self._stored_after_retry(post, MediaPart.PREVIEW)
        return self.store.put_media(data, mime="image/jpeg", extension="jpg")

    async def _download(self, post: Post, message: Any, *, thumb: bool = False) -> bytes | None:
        """Download, fetching the message again by id (a fresh file reference) when the reference
        expired, ``FILE_REFERENCE_REFETCHES`` times; then the expiry is raised like any error."""
        refetches = 0
        while True:
            try:
                data = await download(self.client, message, thumb=thumb)
            except errors.RPCError as exc:
                if meaning(exc) is not Meaning.REFERENCE_EXPIRED or refetches == FILE_REFERENCE_REFETCHES:
                    if refetches:
                        metrics.incr("telegram_file_reference_refetches_total", label="skipped")
                    raise
                refetches += 1
                log.info("channel %s message %s: file reference expired; fetching the message again (%d of %d)",
                         self.channel.label, post.message_id, refetches, FILE_REFERENCE_REFETCHES)
                message = await self.client.get_messages(input_peer(self.channel), ids=post.message_id)
                if message is None:  # deleted meanwhile: the refresh DAG tombstones it
                    return None
                continue
            if refetches:
                metrics.incr("telegram_file_reference_refetches_total", label="recovered")
            return data

    def _skip(self, post: Post, reason: str, detail: str) -> PostMedia:
        self.fetched.skips.append(Skip(post.channel_id, f"message:{post.message_id}", reason, detail))
        return PostMedia(skip_reason=reason)

    def _failed(self, post: Post, part: MediaPart, exc: errors.RPCError) -> PostMedia:
        """What a failed download becomes: raised (a refused session or channel), a retry, or a skip."""
        kind = meaning(exc)
        if kind in (Meaning.SESSION_UNUSABLE, Meaning.CHANNEL_UNAVAILABLE):
            raise exc
        ref = post.media
        what = f"{ref.kind} {ref.file_id}" if part is MediaPart.MEDIA else f"the preview of {ref.kind} {ref.file_id}"
        where = f"channel {post.channel_id} message {post.message_id}: {what}"
        error = f"{error_name(exc)}: {exc}"[:500]
        if kind is Meaning.MEDIA_GONE:
            return self._give_up(post, part, "media_gone", f"{where} is gone from Telegram ({error})")
        if kind is Meaning.WAIT:  # (Telethon answers the downloads after a wait itself: say which wait)
            wait = self.client.wait_on(DOWNLOAD) or Wait.of(exc)
            error = f"{wait.error}: Telegram asked this session to wait {wait.seconds}s before downloads"
            self._retry(post, part, error, tried=False, retry_after=wait.until)
            metrics.incr("telegram_media_retries_total", label="wait")
            return PostMedia()
        before = self.tried.get((post.message_id, part))
        tries = (before.tries if before else 0) + 1
        first = before.first_failed_at if before else self.now
        if gives_up(tries, first, self.now, max_tries=self.settings.media_retry_tries,
                    min_hours=self.settings.media_retry_hours):
            hours = (self.now - first).total_seconds() / 3600
            reason = "download_failed" if part is MediaPart.MEDIA else "thumbnail_failed"
            return self._give_up(post, part, reason, f"{where} could not be downloaded in {tries} tries over "
                                 f"{hours:.0f} hours; the last error: {error}")
        self._retry(post, part, error, tried=True, retry_after=next_try(tries, self.now))
        metrics.incr("telegram_media_retries_total", label="error")
        return PostMedia()

    def _retry(self, post: Post, part: MediaPart, error: str, *, tried: bool, retry_after: datetime) -> None:
        self.fetched.retries.append(MediaRetry(post.channel_id, post.message_id, part, error, tried, retry_after))
        log.info("channel %s message %s: the %s is fetched again after %s (%s)", self.channel.label,
                 post.message_id, part, retry_after.isoformat(timespec="seconds"), error)

    def _give_up(self, post: Post, part: MediaPart, reason: str, detail: str) -> PostMedia:
        if part is MediaPart.PREVIEW:
            self.fetched.skips.append(Skip(post.channel_id, f"message:{post.message_id}", reason,
                                           detail + "; the media itself is stored"))
            return PostMedia()
        return self._skip(post, reason, detail + "; the post is stored without it")

    def _stored_after_retry(self, post: Post, part: MediaPart) -> None:
        if (post.message_id, part) in self.tried:
            metrics.incr("telegram_media_retries_total", label="stored")
            log.info("channel %s message %s: the %s is stored after %d failed tries", self.channel.label,
                     post.message_id, part, self.tried[(post.message_id, part)].tries)
