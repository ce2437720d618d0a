"""Telethon messages read into posts, media references and skips (no requests)."""

from __future__ import annotations

import mimetypes
import re
from collections.abc import Sequence
from typing import Any

from telethon import types

from include.album.domain.models import MediaRef, Post, Skip


def _largest_photo_size(photo: types.Photo) -> tuple[int | None, int | None, int | None]:
    best = (None, None, None)
    for size in photo.sizes or []:
        if isinstance(size, types.PhotoSize):
            candidate = (size.w, size.h, size.size)
        elif isinstance(size, types.PhotoSizeProgressive):
            candidate = (size.w, size.h, max(size.sizes or [0]))
        else:
            continue
        if best[2] is None or (candidate[2] or 0) > best[2]:
            best = candidate
    return best


def media_ref(message: Any) -> MediaRef | None:
    """Describe a message's media without downloading it (None for text-only messages)."""
    media = getattr(message, "media", None)
    if media is None or isinstance(media, types.MessageMediaEmpty):
        return None
    if isinstance(media, types.MessageMediaPhoto):
        photo = media.photo
        if not isinstance(photo, types.Photo):
            return MediaRef(kind="photo")  # expired/self-destructed photo: nothing to fetch
        width, height, size = _largest_photo_size(photo)
        return MediaRef(kind="photo", file_id=photo.id, mime="image/jpeg", size=size, width=width, height=height)
    if isinstance(media, types.MessageMediaDocument):
        document = media.document
        if not isinstance(document, types.Document):
            return MediaRef(kind="document")
        kind, width, height, file_name = "document", None, None, None
        attributes = document.attributes or []
        for attribute in attributes:
            if isinstance(attribute, types.DocumentAttributeFilename):
                file_name = attribute.file_name
            elif isinstance(attribute, (types.DocumentAttributeVideo, types.DocumentAttributeImageSize)):
                width, height = attribute.w, attribute.h
        if any(isinstance(a, types.DocumentAttributeAnimated) for a in attributes):
            kind = "gif"
        elif any(isinstance(a, types.DocumentAttributeSticker) for a in attributes):
            kind = "sticker"
        elif any(isinstance(a, types.DocumentAttributeVideo) for a in attributes):
            kind = "video"
        elif any(isinstance(a, types.DocumentAttributeAudio) and a.voice for a in attributes):
            kind = "voice"
        elif any(isinstance(a, types.DocumentAttributeAudio) for a in attributes):
            kind = "audio"
        return MediaRef(kind=kind, file_id=document.id, mime=clean_mime(document.mime_type),
                        size=document.size, width=width, height=height, file_name=file_name,
                        has_thumb=bool(document.thumbs))
    kinds = {
        types.MessageMediaWebPage: "webpage", types.MessageMediaPoll: "poll", types.MessageMediaGeo: "geo",
        types.MessageMediaGeoLive: "geo", types.MessageMediaVenue: "geo", types.MessageMediaContact: "contact",
    }
    return MediaRef(kind=kinds.get(type(media), "other"))


# A MIME type as S3 (an HTTP header) and Postgres can carry it: printable ASCII, at most
# 255 characters (RFC 6838 caps type and subtype at 127 each).
_MIME_PATTERN = re.compile(r"[\x21-\x7e]+/[\x20-\x7e]+")
_MIME_MAX = 255
OCTET_STREAM = "application/octet-stream"


def clean_mime(mime: str | None) -> str:
    """The sender's MIME type, or ``application/octet-stream`` when it is missing or not one.

    The uploader's client chooses it: a CR/LF breaks the S3 PUT header and a NUL the Postgres
    insert, and either would fail the channel's ingest on every run.
    """
    if mime and len(mime) <= _MIME_MAX and _MIME_PATTERN.fullmatch(mime):
        return mime
    return OCTET_STREAM


def _raw_text(message: Any) -> str:
    text = getattr(message, "message", None) or ""
    if not text and isinstance(getattr(message, "media", None), types.MessageMediaPoll):
        question = message.media.poll.question
        text = getattr(question, "text", question) or ""
    return text


def message_text(message: Any) -> str:
    """The text (a poll's question when it has none), with NUL as U+FFFD: Postgres text cannot hold NUL."""
    return _raw_text(message).replace("\x00", "\ufffd")


def to_post(channel_id: int, message: types.Message) -> Post:
    return Post(
        channel_id=channel_id,
        message_id=message.id,
        grouped_id=message.grouped_id,
        text=message_text(message),
        posted_at=message.date,
        edited_at=message.edit_date,
        media=media_ref(message),
    )


def read_messages(channel_id: int, messages: Sequence[Any]) -> tuple[list[tuple[Post, Any]], list[Skip]]:
    """Split pulled messages into posts (with their Telethon message) and recorded skips."""
    posts, skips = [], []
    for message in messages:
        if isinstance(message, types.MessageService):
            action = type(message.action).__name__
            skips.append(Skip(channel_id, f"message:{message.id}", "service_message",
                              f"channel {channel_id} message {message.id} is a service message ({action}); "
                              "service messages are not stored as posts"))
        elif isinstance(message, types.Message):
            posts.append((to_post(channel_id, message), message))
            skips.extend(altered(channel_id, message))
    return posts, skips


def altered(channel_id: int, message: types.Message) -> list[Skip]:
    """What of a stored post was changed to be storable: recorded, so nothing is altered silently."""
    where = f"channel {channel_id} message {message.id}"
    skips = []
    nuls = _raw_text(message).count("\x00")
    if nuls:
        skips.append(Skip(channel_id, f"message:{message.id}", "text_nul_replaced",
                          f"{where}: its text holds {nuls} NUL character(s), which Postgres text cannot store; "
                          "stored with U+FFFD in their place"))
    document = getattr(getattr(message, "media", None), "document", None)
    mime = document.mime_type if isinstance(document, types.Document) else None
    if mime and clean_mime(mime) != mime:
        skips.append(Skip(channel_id, f"message:{message.id}", "invalid_mime_type",
                          f"{where}: document {document.id} has the MIME type {mime[:100]!r}, which is "
                          f"not one (printable ASCII type/subtype, at most {_MIME_MAX} characters); "
                          f"stored as {OCTET_STREAM}"))
    return skips


def file_extension(mime: str | None, file_name: str | None = None) -> str:
    """Extension for the S3 key: from the MIME type, else the file name, else ``bin``."""
    overrides = {"image/jpeg": "jpg", "video/mp4": "mp4", "application/pdf": "pdf", "image/webp": "webp",
                 "audio/ogg": "ogg", "video/quicktime": "mov", "audio/mpeg": "mp3", "application/x-tgsticker": "tgs"}
    if mime in overrides:
        return overrides[mime]
    guessed = mimetypes.guess_extension(mime or "") if mime else None
    if guessed:
        return guessed.lstrip(".")
    if file_name and "." in file_name:
        suffix = file_name.rsplit(".", 1)[1].lower()
        if suffix.isalnum() and len(suffix) <= 8:
            return suffix
    return "bin"
