"""Album grouping rules, as pure functions.

An album is every stored, non-deleted post of one channel sharing a ``grouped_id``.
Items are ordered by message id (0-based positions), never by arrival. The album is
recomputed from *all* its posts each time one of them is (re)ingested, so an album
split across pulls is extended in place instead of being saved partial.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from include.album.domain.models import AlbumComposition, AlbumItem

log = logging.getLogger(__name__)

TELEGRAM_MAX_ALBUM_ITEMS = 10

_ALBUM_KIND_OF_MEDIA = {"photo": "photo", "video": "video", "gif": "video"}


@dataclass(frozen=True)
class GroupMember:
    """The columns of a stored post that grouping reads."""

    message_id: int
    text: str
    posted_at: datetime
    media_kind: str | None
    sha256: str | None
    thumb_sha256: str | None = None


def album_kind(media_kinds: Iterable[str | None]) -> str:
    """photo|video|document when all items agree, else mixed (GIFs count as video)."""
    kinds = {_ALBUM_KIND_OF_MEDIA.get(kind or "", "document") for kind in media_kinds}
    if len(kinds) == 1:
        return kinds.pop()
    return "mixed"


def caption_of(texts_in_position_order: Iterable[str]) -> str | None:
    """The first non-empty text in position order (the caption is not always on item 0)."""
    for text in texts_in_position_order:
        if text and text.strip():
            return text
    return None


def content_hash(items: Sequence[AlbumItem], texts: Sequence[str]) -> str:
    """Fingerprint of the composition: which messages, in which order, with which bytes and texts.

    It changes when an item is added, removed or re-uploaded, or any item's text (the caption
    or another item's) is edited; that is what makes an album "changed" and due for
    re-assembly and re-indexing (item texts are in the index).
    """
    canonical = [[i.message_id, i.media_kind, i.sha256, i.thumb_sha256, text] for i, text in
                 zip(items, texts, strict=True)]
    data = json.dumps(canonical, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(data.encode("utf-8")).hexdigest()


def compose_album(channel_id: int, grouped_id: int, members: Iterable[GroupMember]) -> AlbumComposition:
    """Build the album of ``grouped_id`` in ``channel_id`` from all its known posts."""
    ordered = sorted({m.message_id: m for m in members}.values(), key=lambda m: m.message_id)
    if not ordered:
        raise ValueError(f"album {grouped_id} of channel {channel_id} has no posts to group")
    items = tuple(
        AlbumItem(
            position=position,
            message_id=m.message_id,
            media_kind=m.media_kind,
            sha256=m.sha256,
            thumb_sha256=m.thumb_sha256,
        )
        for position, m in enumerate(ordered)
    )
    caption = caption_of(m.text for m in ordered)
    over_limit = len(items) > TELEGRAM_MAX_ALBUM_ITEMS
    if over_limit:
        # Telegram caps albums at 10; more means two albums reused an id or the data is odd.
        # Keep every item (nothing is dropped) and flag the album for a person to look at.
        log.warning(
            "album %s of channel %s has %d items (Telegram allows %d); kept all, flagged over_limit",
            grouped_id, channel_id, len(items), TELEGRAM_MAX_ALBUM_ITEMS,
        )
    return AlbumComposition(
        channel_id=channel_id,
        grouped_id=grouped_id,
        album_kind=album_kind(m.media_kind for m in ordered),
        caption_text=caption,
        posted_at=min(m.posted_at for m in ordered),
        content_hash=content_hash(items, [m.text for m in ordered]),
        items=items,
        over_limit=over_limit,
    )


def group_members(rows: Iterable[tuple[int, GroupMember]]) -> dict[int, list[GroupMember]]:
    """Split ``(grouped_id, member)`` rows into one member list per grouped_id."""
    groups: dict[int, list[GroupMember]] = {}
    for grouped_id, member in rows:
        groups.setdefault(grouped_id, []).append(member)
    return groups
