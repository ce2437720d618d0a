"""A hostile ``telegram-archive/1`` corpus and what ingesting it must produce.

Everything a channel can throw at the pipeline that is not a normal photo: a 4,096-character
caption of emoji, RTL and zero-width characters; SQL, Cypher and Jinja in texts, usernames and
titles; an album of text-only messages; a service message inside an album's id range; a poll,
a location and a web page preview; a 41 MB document; a truncated JPEG; PNG decompression bombs
as a photo and as an ``image/png`` document; NUL characters in texts and control characters in
documents' MIME types. Normal photos and albums sit between them, so a test can check that each
hostile item is stored or skipped with a reason and nothing else is lost.

``build_hostile_archive(path)`` returns the sample-shaped expectation (channels, tenants, posts,
skips, albums: ``sample.differences_from_expectation`` reads it) plus ``message_ids`` (every id
written, per channel), ``vision_skips`` (sha256 -> the terminal vision skip reason) and
``item_skips`` (channel, message id -> the skip reason its album item must carry).
"""

from __future__ import annotations

import hashlib
import struct
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from telethon import types

from devtools.sample import (
    SAMPLE_START,
    SampleBuilder,
    document_message,
    fake_pdf,
    geo_message,
    photo_message,
    poll_message,
    render_text_image,
    text_message,
    webpage_message,
)

HOSTILE, OTHER = 4444444444, 5555555555
HOSTILE_USERNAME = "x'); DROP TABLE posts;--{{ var.value.secret }}"
HOSTILE_TITLE = ("MATCH (n) DETACH DELETE n // {% raw %}{{ 7*7 }}{% endraw %} "
                 "\u202eesrever \u0645\u0631\u062d\u0628\u0627")
OTHER_USERNAME = "\"}) MATCH (n) DETACH DELETE n //{% for x in y %}"
OTHER_TITLE = "Robert'); DROP TABLE channels;-- \u05e9\u05dc\u05d5\u05dd {% raw %} \u200b\u200d\ufeff"
HOSTILE_CHANNELS = [
    {"id": HOSTILE, "access_hash": 6000000000000000004, "username": HOSTILE_USERNAME, "title": HOSTILE_TITLE},
    {"id": OTHER, "access_hash": 6000000000000000005, "username": OTHER_USERNAME, "title": OTHER_TITLE},
]
HOSTILE_TENANTS = {"hostile": [HOSTILE, OTHER], "other-tenant": [OTHER]}

SQL_TEXT = "Robert'); DROP TABLE posts; -- ' OR '1'='1 \\x00 $$ ; DELETE FROM channels; %(text)s %s"
CYPHER_TEXT = "\"}) DETACH DELETE n // MATCH (n) DETACH DELETE n RETURN 1 /* $rows */ `x`"
JINJA_TEXT = "{{ 7*7 }} {% for x in y %}{{ var.value.secret }} {{ conn.albums_db.password }} {# #} ${HOME}"

# Message ids of the hostile items, for the test's assertions.
LONG_CAPTION_ALBUM = (1001, 1002)  # normal photos; item 0 carries the 4,096-character caption
SQL_POST, CYPHER_POST, JINJA_POST = 1010, 1011, 1012
TEXT_ONLY_ALBUM = (1020, 1021, 1022)  # a grouped_id with no media
SERVICE_ALBUM, SERVICE_INSIDE = (1030, 1032, 1033), 1031  # the service message sits inside the album's range
POLL, GEO, WEBPAGE = 1040, 1041, 1042
BIG_DOCUMENT_ALBUM, BIG_DOCUMENT = (1050, 1051), 1051  # a normal photo + a 41 MB document
BROKEN_ALBUM = (1060, 1061, 1062)  # normal photo, truncated JPEG, PNG bomb (20000x20000) as a photo
BOMB_DOCUMENT, TRUNCATED_LOOSE = 1070, 1071  # PNG bomb (8000x8000) as image/png; a truncated JPEG
NUL_TEXT, CRLF_MIME_DOCUMENT, NUL_MIME_DOCUMENT = 1090, 1091, 1092  # Postgres and HTTP metacharacters
NORMAL_POSTS = (1100, 1101)  # a normal photo post and a text post after everything hostile
OTHER_ALBUM = (2002, 2003)
OTHER_TEXT, OTHER_SERVICE_LAST = 2001, 2004  # the channel ends with a service message

BIG_DOCUMENT_BYTES = 41 * 1024 * 1024
ALBUM_IDS = {
    "long_caption": 8800000000000000001, "text_only": 8800000000000000002, "service": 8800000000000000003,
    "big_document": 8800000000000000004, "broken": 8800000000000000005, "other": 8800000000000000006,
}


def long_caption(length: int = 4096) -> str:
    """Exactly ``length`` code points: ZWJ emoji, flags, skin tones, Arabic, Hebrew, bidi overrides,
    zero-width characters, combining marks and the SQL/Cypher/Jinja metacharacters."""
    unit = ("Caption \U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466 \U0001f3f3\ufe0f\u200d\U0001f308 "
            "\U0001f44d\U0001f3fd \U0001f1fa\U0001f1e6 \u0645\u0631\u062d\u0628\u0627 \u0628\u0627\u0644\u0639\u0627"
            "\u0644\u0645 \u05e9\u05dc\u05d5\u05dd \u05e2\u05d5\u05dc\u05dd \u200b\u200d\ufeff\u202eesrever\u202c "
            "\u2066isolate\u2069 e\u0301 \u0436 '; DROP TABLE posts; -- }) DETACH DELETE n // {{ 7*7 }} "
            "{% for x in y %} ")
    text = unit * (length // len(unit) + 1)
    return text[:length]


def png_bomb(width: int, height: int) -> bytes:
    """A valid 1-bit greyscale PNG of ``width`` x ``height`` white pixels: kilobytes on disk,
    tens to hundreds of megapixels decoded. Written row by row, so building it never holds the pixels."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    compressor = zlib.compressobj(9)
    row = b"\x00" + b"\xff" * ((width + 7) // 8)
    idat = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def truncated_jpeg(lines: list[str]) -> bytes:
    """The first half of a real JPEG: a valid header, then the scan stops."""
    data = render_text_image(lines)
    return data[: len(data) // 2]


@dataclass
class HostileBuilder(SampleBuilder):
    """``SampleBuilder`` plus raw media bytes, skips by reason and the vision outcome per image."""

    vision_skips: dict[str, str] = field(default_factory=dict)
    item_skips: dict[tuple[int, int], str] = field(default_factory=dict)
    message_ids: dict[int, list[int]] = field(default_factory=dict)

    def add(self, channel_id: int, message: types.Message, media_kind: str | None, *, data: bytes | None = None,
            file_id: int | None = None, skip_reason: str | None = None, vision_skip: str | None = None,
            altered: tuple[str, ...] = ()) -> None:
        """One message; ``skip_reason`` says why its media is not stored, ``altered`` the reasons
        recorded for a post stored with something changed (its text or MIME type)."""
        if data is not None and file_id is not None:
            self.writer.add_media(file_id, data)
        self._post(channel_id, message, media_kind, stored=skip_reason is None and data is not None,
                   skip_reason=skip_reason)
        self.message_ids.setdefault(channel_id, []).append(message.id)
        for reason in (*([skip_reason] if skip_reason else []), *altered):
            self.skips.append({"channel_id": channel_id, "ref": f"message:{message.id}", "reason": reason})
        if vision_skip is not None and data is not None:
            self.vision_skips[hashlib.sha256(data).hexdigest()] = vision_skip

    def image(self, channel_id: int, message_id: int, date: datetime, text: str, data: bytes, *,
              grouped_id: int | None = None, width: int = 800, height: int = 450,
              vision_skip: str | None = None) -> None:
        message, photo_id = photo_message(channel_id, message_id, date, text, data, grouped_id=grouped_id,
                                          width=width, height=height)
        self.add(channel_id, message, "photo", data=data, file_id=photo_id, vision_skip=vision_skip)

    def service(self, channel_id: int, message_id: int, date: datetime) -> None:
        super().service(channel_id, message_id, date)
        self.message_ids.setdefault(channel_id, []).append(message_id)


def build_hostile_archive(path: str | Path) -> dict:
    """Write the hostile archive to ``path`` and return its expectation (see the module doc)."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    b = HostileBuilder(path, HOSTILE_CHANNELS, HOSTILE_TENANTS)

    def at(minute: int, second: int = 0) -> datetime:
        return SAMPLE_START + timedelta(minutes=minute, seconds=second)

    def text(channel_id: int, message_id: int, when: datetime, body: str, grouped_id: int | None = None) -> None:
        b.add(channel_id, text_message(channel_id, message_id, when, body, grouped_id=grouped_id), None)

    # A normal photo album whose caption is 4,096 characters of everything awkward.
    first, second = LONG_CAPTION_ALBUM
    album = ALBUM_IDS["long_caption"]
    b.image(HOSTILE, first, at(0), long_caption(), render_text_image(["HARBOUR", "AT NIGHT"]), grouped_id=album)
    b.image(HOSTILE, second, at(0, 1), "", render_text_image(["MARKET", "SQUARE"]), grouped_id=album)

    # Injection attempts as plain posts.
    text(HOSTILE, SQL_POST, at(1), SQL_TEXT)
    text(HOSTILE, CYPHER_POST, at(1, 10), CYPHER_TEXT)
    text(HOSTILE, JINJA_POST, at(1, 20), JINJA_TEXT)

    # A grouped_id shared by text-only messages: an album without media.
    for offset, message_id in enumerate(TEXT_ONLY_ALBUM):
        text(HOSTILE, message_id, at(2, offset), ["", "Text-only album {{ 7*7 }}", "\u200b"][offset],
             grouped_id=ALBUM_IDS["text_only"])

    # An album with a service message (a pin) in the middle of its id range.
    b.image(HOSTILE, SERVICE_ALBUM[0], at(3), "Album around a pin", render_text_image(["NORTH"]),
            grouped_id=ALBUM_IDS["service"])
    b.service(HOSTILE, SERVICE_INSIDE, at(3, 1))
    b.image(HOSTILE, SERVICE_ALBUM[1], at(3, 2), "", render_text_image(["SOUTH"]), grouped_id=ALBUM_IDS["service"])
    b.image(HOSTILE, SERVICE_ALBUM[2], at(3, 3), "", render_text_image(["EAST"]), grouped_id=ALBUM_IDS["service"])

    # Media kinds that are not stored: a poll, a location, a web page preview.
    b.add(HOSTILE, poll_message(HOSTILE, POLL, at(4), "Drop table? '; DROP TABLE posts; -- {{ 7*7 }}"), "poll",
          skip_reason="unsupported_media")
    b.add(HOSTILE, geo_message(HOSTILE, GEO, at(4, 10), lat=-33.8688, long=151.2093), "geo",
          skip_reason="unsupported_media")
    b.add(HOSTILE, webpage_message(HOSTILE, WEBPAGE, at(4, 20), "Read https://example.org/?q=';DROP TABLE posts;--",
                                   "https://example.org/?q=';DROP TABLE posts;--&t={{7*7}}"), "webpage",
          skip_reason="unsupported_media")

    # An album of a normal photo and a 41 MB document (really 41 MB on disk).
    b.image(HOSTILE, BIG_DOCUMENT_ALBUM[0], at(5), "Photo and a huge file", render_text_image(["ARCHIVE"]),
            grouped_id=ALBUM_IDS["big_document"])
    big, big_id = document_message(HOSTILE, BIG_DOCUMENT, at(5, 1), "", mime="application/zip",
                                   size=BIG_DOCUMENT_BYTES, grouped_id=ALBUM_IDS["big_document"],
                                   attributes=[types.DocumentAttributeFilename(file_name="dump'; --.zip")])
    (path / "media" / str(big_id)).write_bytes(bytes(BIG_DOCUMENT_BYTES))
    b.add(HOSTILE, big, "document", skip_reason="media_too_large")
    b.item_skips[(HOSTILE, BIG_DOCUMENT)] = "media_not_stored:media_too_large"

    # An album of a normal photo, a truncated JPEG and a PNG bomb sent as a photo.
    normal, truncated, bomb = BROKEN_ALBUM
    b.image(HOSTILE, normal, at(6), "Broken images", render_text_image(["GOOD", "IMAGE"]),
            grouped_id=ALBUM_IDS["broken"])
    b.image(HOSTILE, truncated, at(6, 1), "", truncated_jpeg(["CUT", "IN HALF"]), grouped_id=ALBUM_IDS["broken"],
            vision_skip="corrupt_image")
    b.image(HOSTILE, bomb, at(6, 2), "", png_bomb(20000, 20000), grouped_id=ALBUM_IDS["broken"],
            width=20000, height=20000, vision_skip="decompression_bomb")
    b.item_skips[(HOSTILE, truncated)] = "corrupt_image"
    b.item_skips[(HOSTILE, bomb)] = "decompression_bomb"

    # Outside albums: a PNG bomb as an image/png document, a truncated JPEG photo.
    bomb_bytes = png_bomb(8000, 8000)
    bomb_doc, bomb_id = document_message(
        HOSTILE, BOMB_DOCUMENT, at(7), "Bomb as a document", mime="image/png", size=len(bomb_bytes),
        attributes=[types.DocumentAttributeImageSize(w=8000, h=8000),
                    types.DocumentAttributeFilename(file_name="bomb.png")])
    b.add(HOSTILE, bomb_doc, "document", data=bomb_bytes, file_id=bomb_id, vision_skip="decompression_bomb")
    b.image(HOSTILE, TRUNCATED_LOOSE, at(7, 10), "Truncated on its own", truncated_jpeg(["HALF", "A PHOTO"]),
            vision_skip="corrupt_image")

    # A NUL in a text (Postgres text cannot hold it); CR/LF and NUL in MIME types (an S3 header, a
    # Postgres column): stored with U+FFFD and application/octet-stream, each alteration recorded.
    b.add(HOSTILE, text_message(HOSTILE, NUL_TEXT, at(7, 30), "NUL\x00inside\x00 \u0645\u0631"), None,
          altered=("text_nul_replaced",))
    for message_id, mime, body in ((CRLF_MIME_DOCUMENT, "application/pdf\r\nX-Injected: 1", "CRLF mime"),
                                   (NUL_MIME_DOCUMENT, "image/png\x00", "NUL mime\x00")):
        data = fake_pdf(body)
        document, document_id = document_message(
            HOSTILE, message_id, at(7, 40), body, mime=mime, size=len(data),
            attributes=[types.DocumentAttributeFilename(file_name="x\u202egpj.exe")])
        altered = ("invalid_mime_type", "text_nul_replaced") if "\x00" in body else ("invalid_mime_type",)
        b.add(HOSTILE, document, "document", data=data, file_id=document_id, altered=altered)

    # Normal posts after everything hostile: nothing after a bad item may be lost.
    b.image(HOSTILE, NORMAL_POSTS[0], at(8), "Ordinary photo after the storm", render_text_image(["CALM", "SEA"]))
    text(HOSTILE, NORMAL_POSTS[1], at(8, 30), "Ordinary text at the end.")

    # The other channel: text, a normal album, and a service message as its newest message.
    text(OTHER, OTHER_TEXT, at(9), JINJA_TEXT + " " + SQL_TEXT)
    b.image(OTHER, OTHER_ALBUM[0], at(10), "Second channel album", render_text_image(["FOREST"]),
            grouped_id=ALBUM_IDS["other"])
    b.image(OTHER, OTHER_ALBUM[1], at(10, 1), "", render_text_image(["RIVER"]), grouped_id=ALBUM_IDS["other"])
    b.service(OTHER, OTHER_SERVICE_LAST, at(11))

    expected = b.close()
    return expected | {"message_ids": b.message_ids, "vision_skips": b.vision_skips,
                       "item_skips": {f"{c}:{m}": reason for (c, m), reason in b.item_skips.items()}}
