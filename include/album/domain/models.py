"""Records that cross module boundaries.

One id type per id, everywhere: ``channel_id`` and ``message_id`` are Telegram's
integers (the channel id is the positive id of ``PeerChannel``), ``album_id`` is
``media_groups.id`` (int), ``tenant_id`` is a short text slug, ``sha256`` is lower-case hex.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from include.album.domain.lifecycle import ChannelState

TENANT_ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")

# Media kinds as stored in posts.media_kind / media_group_items.media_kind.
DOWNLOADABLE_KINDS = frozenset({"photo", "video", "gif", "document", "audio", "voice", "sticker"})
# Terminal skips of a download: Telegram says the file is gone, or every try failed. A later
# re-pull that stores the media after all removes them.
MEDIA_GIVEN_UP_SKIPS = ("media_gone", "download_failed")
PREVIEW_GIVEN_UP_SKIP = "thumbnail_failed"


def validate_tenant_id(tenant_id: str) -> str:
    """Return ``tenant_id`` if it is safe to use in S3 keys and filters, else raise."""
    if not isinstance(tenant_id, str) or not TENANT_ID_PATTERN.match(tenant_id):
        raise ValueError(
            f"invalid tenant id {tenant_id!r}: use 1-63 characters of a-z, 0-9, '_' and '-', "
            "starting with a letter or digit"
        )
    return tenant_id


@dataclass(frozen=True)
class Channel:
    id: int
    access_hash: int
    username: str | None
    title: str
    hwm: int = 0
    is_active: bool = True
    flood_wait_until: datetime | None = None
    top_message: int | None = None  # the newest message id Telegram last reported (None: not asked yet)
    top_checked_at: datetime | None = None  # when it reported it
    in_dialogs: bool | None = None  # False: outside the account's dialogs, probed on its own
    state: ChannelState = ChannelState.ACTIVE  # UNAVAILABLE: Telegram refuses it (channels.state_reason says why)
    media_pending: bool = False  # media of earlier posts due to be fetched again (``MediaRetry``)
    hinted_at: datetime | None = None  # when the updates listener last heard it post
    last_error_at: datetime | None = None  # when its last pull or check failed (None: the last one worked)

    @property
    def label(self) -> str:
        return f"@{self.username}" if self.username else str(self.id)


@dataclass(frozen=True)
class MediaRef:
    """What a message carries, before download: enough to dedupe and to fetch."""

    kind: str  # photo|video|gif|document|audio|voice|sticker|webpage|poll|geo|contact|other
    file_id: int | None = None  # Telegram photo.id / document.id (global)
    mime: str | None = None
    size: int | None = None
    width: int | None = None
    height: int | None = None
    file_name: str | None = None
    has_thumb: bool = False

    @property
    def downloadable(self) -> bool:
        return self.kind in DOWNLOADABLE_KINDS and self.file_id is not None


@dataclass(frozen=True)
class Post:
    """One Telegram message as stored in ``posts``."""

    channel_id: int
    message_id: int
    grouped_id: int | None
    text: str
    posted_at: datetime
    edited_at: datetime | None = None
    media: MediaRef | None = None

    @property
    def media_kind(self) -> str | None:
        return self.media.kind if self.media else None


@dataclass(frozen=True)
class StoredMedia:
    """A media object written to S3 (content-addressed)."""

    sha256: str
    mime: str
    size: int
    s3_key: str
    width: int | None = None
    height: int | None = None


@dataclass
class PostMedia:
    """Outcome of fetching one post's media: stored objects or a skip reason."""

    media: StoredMedia | None = None
    thumb: StoredMedia | None = None
    skip_reason: str | None = None  # terminal: the media is not stored and will not be fetched again


@dataclass(frozen=True)
class Skip:
    """Something that was not stored (or only partly), with the reason a person needs."""

    channel_id: int
    ref: str  # "message:123" or "archive:channels/1/messages.jsonl:7"
    reason: str  # short machine-readable reason, e.g. "media_too_large"
    detail: str  # human-readable: what happened and what to do


class MediaPart(StrEnum):
    """What of a post's media a download fetches: the file, or a video's or GIF's preview."""

    MEDIA = "media"
    PREVIEW = "preview"


@dataclass(frozen=True)
class MediaRetry:
    """Media a later run fetches again (``media_retries``): Telegram asked for a wait (not a
    try), or a try failed with an error that may pass. Not fetched again before ``retry_after``."""

    channel_id: int
    message_id: int
    part: MediaPart
    error: str  # Telegram's error string and what it said
    tried: bool
    retry_after: datetime


@dataclass(frozen=True)
class AlbumItem:
    position: int
    message_id: int
    media_kind: str | None
    sha256: str | None
    thumb_sha256: str | None = None


@dataclass(frozen=True)
class AlbumComposition:
    """An album as derived from its posts (see ``grouping.compose_album``)."""

    channel_id: int
    grouped_id: int
    album_kind: str
    caption_text: str | None
    posted_at: datetime
    content_hash: str
    items: tuple[AlbumItem, ...]
    over_limit: bool = False

    @property
    def items_count(self) -> int:
        return len(self.items)


@dataclass
class IngestResult:
    """What one channel's ingestion did; album ids go to XCom, the rest to logs/metrics."""

    channel_id: int
    messages: int = 0
    media_stored: int = 0
    media_bytes: int = 0
    skips: list[Skip] = field(default_factory=list)
    retries: list[MediaRetry] = field(default_factory=list)  # media a later run fetches again
    album_ids: list[int] = field(default_factory=list)
    hwm: int = 0
    flood_wait_seconds: int | None = None
    wait_error: str | None = None  # Telegram's string of the wait that deferred the channel (FLOOD_WAIT_600)
    deferred_until: datetime | None = None
    error: str | None = None  # the pull failed for the channel's own sake (recorded on its row)
    unavailable: str | None = None  # Telegram refused the channel (its error string); set aside
