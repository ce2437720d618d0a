"""Deterministic sample archive: what the demo and the tests ingest.

``build_sample_archive(path)`` writes a ``telegram-archive/1`` archive of three channels
plus ``expected.json``: the channels, tenants, posts, skips and albums (items in order,
captions, kinds) that ingesting it must produce. Same input, same bytes, every time.

The message helpers (``photo_message``, ``video_message``, ...) build real Telethon
objects; tests use them to write their own archives.
"""

from __future__ import annotations

import hashlib
import io
import json
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from PIL import Image, ImageDraw, ImageFont
from telethon import types

from include.album.admin.channels import register_archive
from include.album.source.archive import ArchiveWriter
from include.album.source.messages import message_text
from include.album.stores import db

FONT_PATH = Path(__file__).parent / "assets" / "DejaVuSans.ttf"

# The sample spans four 5-minute windows: 10:00-10:20 UTC on this day.
SAMPLE_START = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
SAMPLE_END = SAMPLE_START + timedelta(minutes=20)


def _file_id(seed: str) -> int:
    return int.from_bytes(hashlib.sha256(seed.encode()).digest()[:7], "big")


def render_text_image(lines: list[str], *, size: tuple[int, int] = (800, 450), background: str = "#f4f1ea",
                      color: str = "#111111", fmt: str = "JPEG") -> bytes:
    """An image with large, OCR-friendly text; deterministic bytes for the same input."""
    image = Image.new("RGB", size, background)
    draw = ImageDraw.Draw(image)
    font = ImageFont.truetype(str(FONT_PATH), 56)
    y = (size[1] - 80 * len(lines)) // 2
    for line in lines:
        width = draw.textlength(line, font=font)
        draw.text(((size[0] - width) / 2, y), line, font=font, fill=color)
        y += 80
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, quality=90) if fmt == "JPEG" else image.save(buffer, format=fmt)
    return buffer.getvalue()


# A 2-second 96x64 VP9 clip in MP4 (1.3 KB), made once with PyAV 18.1 (libvpx-vp9, crf 40, 10 fps,
# a yellow square crossing a blue field): browsers play it, so the albums view's videos do.
CLIP = (Path(__file__).parent / "assets" / "clip.mp4").read_bytes()


def fake_video(seed: str, size: int = 48_000) -> bytes:
    """A playable MP4 of ``size`` bytes, unique to ``seed``: the clip, then a ``free`` box (which
    players skip) of deterministic noise."""
    rng = random.Random(seed)
    padding = max(size - len(CLIP) - 8, 0)
    return CLIP + (padding + 8).to_bytes(4, "big") + b"free" + bytes(rng.getrandbits(8) for _ in range(padding))


def fake_pdf(title: str) -> bytes:
    """A one-page PDF (A6) that shows ``title``: viewers and the albums view's preview render it."""
    text = title.encode("ascii", "replace").replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)")
    content = b"BT /F1 18 Tf 24 360 Td (" + text + b") Tj ET"
    objects = [b"<</Type/Catalog/Pages 2 0 R>>", b"<</Type/Pages/Kids[3 0 R]/Count 1>>",
               b"<</Type/Page/Parent 2 0 R/MediaBox[0 0 298 420]/Contents 4 0 R/Resources<</Font<</F1 5 0 R>>>>>>",
               b"<</Length %d>>stream\n%s\nendstream" % (len(content), content),
               b"<</Type/Font/Subtype/Type1/BaseFont/Helvetica>>"]
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer<</Size %d/Root 1 0 R>>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def _message(channel_id: int, message_id: int, date: datetime, text: str, media: Any = None,
             grouped_id: int | None = None, **extra: Any) -> types.Message:
    return types.Message(
        id=message_id, peer_id=types.PeerChannel(channel_id), date=date, message=text,
        post=True, media=media, grouped_id=grouped_id, **extra,
    )


def text_message(channel_id: int, message_id: int, date: datetime, text: str, **extra: Any) -> types.Message:
    return _message(channel_id, message_id, date, text, **extra)


def photo_message(channel_id: int, message_id: int, date: datetime, text: str, data: bytes, *,
                  grouped_id: int | None = None, width: int = 800, height: int = 450,
                  photo_id: int | None = None) -> tuple[types.Message, int]:
    photo_id = photo_id or _file_id(f"photo:{channel_id}:{message_id}")
    photo = types.Photo(
        id=photo_id, access_hash=photo_id ^ 0x5A5A5A, file_reference=b"\x01" + photo_id.to_bytes(8, "big"),
        date=date, sizes=[types.PhotoSize(type="y", w=width, h=height, size=len(data))], dc_id=0,
    )
    return _message(channel_id, message_id, date, text, types.MessageMediaPhoto(photo=photo), grouped_id), photo_id


def document_message(channel_id: int, message_id: int, date: datetime, text: str, *, mime: str, size: int,
                     attributes: list[Any] | None = None, thumb: bytes | None = None,
                     grouped_id: int | None = None, document_id: int | None = None,
                     video: bool = False) -> tuple[types.Message, int]:
    document_id = document_id or _file_id(f"document:{channel_id}:{message_id}")
    thumbs = [types.PhotoSize(type="m", w=320, h=180, size=len(thumb))] if thumb else None
    document = types.Document(
        id=document_id, access_hash=document_id ^ 0x3C3C3C, file_reference=b"\x02" + document_id.to_bytes(8, "big"),
        date=date, mime_type=mime, size=size, dc_id=0, attributes=attributes or [], thumbs=thumbs,
    )
    media = types.MessageMediaDocument(document=document, video=video or None)
    return _message(channel_id, message_id, date, text, media, grouped_id), document_id


def video_message(channel_id: int, message_id: int, date: datetime, text: str, data: bytes, thumb: bytes, *,
                  grouped_id: int | None = None) -> tuple[types.Message, int]:
    attributes = [types.DocumentAttributeVideo(duration=12.0, w=1280, h=720, supports_streaming=True),
                  types.DocumentAttributeFilename(file_name=f"clip_{message_id}.mp4")]
    return document_message(channel_id, message_id, date, text, mime="video/mp4", size=len(data),
                            attributes=attributes, thumb=thumb, grouped_id=grouped_id, video=True)


def gif_message(channel_id: int, message_id: int, date: datetime, text: str, data: bytes, thumb: bytes, *,
                grouped_id: int | None = None) -> tuple[types.Message, int]:
    """A GIF as Telegram sends it: an MP4 document marked animated."""
    attributes = [types.DocumentAttributeVideo(duration=3.0, w=480, h=270),
                  types.DocumentAttributeAnimated(),
                  types.DocumentAttributeFilename(file_name=f"anim_{message_id}.mp4")]
    return document_message(channel_id, message_id, date, text, mime="video/mp4", size=len(data),
                            attributes=attributes, thumb=thumb, grouped_id=grouped_id)


def service_message(channel_id: int, message_id: int, date: datetime) -> types.MessageService:
    return types.MessageService(
        id=message_id, peer_id=types.PeerChannel(channel_id), date=date, post=True,
        action=types.MessageActionPinMessage(),
    )


def poll_message(channel_id: int, message_id: int, date: datetime, question: str) -> types.Message:
    poll = types.Poll(
        id=_file_id(f"poll:{channel_id}:{message_id}"),
        hash=0, question=types.TextWithEntities(text=question, entities=[]),
        answers=[types.PollAnswer(text=types.TextWithEntities(text=a, entities=[]), option=bytes([i]))
                 for i, a in enumerate(["Yes", "No"])],
    )
    media = types.MessageMediaPoll(poll=poll, results=types.PollResults())
    return _message(channel_id, message_id, date, "", media)


def webpage_message(channel_id: int, message_id: int, date: datetime, text: str, url: str) -> types.Message:
    page = types.WebPage(id=_file_id(f"web:{url}"), url=url, display_url=url.split("//")[-1], hash=0)
    return _message(channel_id, message_id, date, text, types.MessageMediaWebPage(webpage=page))


def geo_message(channel_id: int, message_id: int, date: datetime, lat: float, long: float,
                text: str = "") -> types.Message:
    """A shared location: media of a kind that is stored as a post with an ``unsupported_media`` skip."""
    point = types.GeoPoint(long=long, lat=lat, access_hash=_file_id(f"geo:{channel_id}:{message_id}"))
    return _message(channel_id, message_id, date, text, types.MessageMediaGeo(geo=point))


@dataclass
class SampleBuilder:
    """Collects messages, media and the expectation while writing an archive."""

    path: Path
    channels: list[dict]
    tenants: dict[str, list[int]]
    writer: ArchiveWriter = field(init=False)
    posts: list[dict] = field(default_factory=list)
    skips: list[dict] = field(default_factory=list)
    albums: dict[tuple[int, int], dict] = field(default_factory=dict)
    span: tuple[datetime, datetime] = (SAMPLE_START, SAMPLE_END)  # when the archive's messages are dated

    def __post_init__(self) -> None:
        self.writer = ArchiveWriter(self.path, self.channels)

    def _post(self, channel_id: int, message: Any, media_kind: str | None, *, stored: bool,
              skip_reason: str | None = None) -> None:
        self.writer.add_message(channel_id, message)
        self.posts.append({
            "channel_id": channel_id, "message_id": message.id, "grouped_id": message.grouped_id,
            "text": message_text(message), "posted_at": message.date.isoformat(), "media_kind": media_kind,
            "media_stored": stored, "media_skip_reason": skip_reason,
        })
        if message.grouped_id is not None:
            album = self.albums.setdefault((channel_id, message.grouped_id), {
                "channel_id": channel_id, "grouped_id": message.grouped_id, "items": [],
            })
            album["items"].append({"message_id": message.id, "media_kind": media_kind,
                                   "text": message_text(message)})

    def text(self, channel_id: int, message_id: int, date: datetime, text: str) -> None:
        self._post(channel_id, text_message(channel_id, message_id, date, text), None, stored=False)

    def photo(self, channel_id: int, message_id: int, date: datetime, text: str, lines: list[str],
              grouped_id: int | None = None, data: bytes | None = None) -> None:
        data = data or render_text_image(lines)
        message, photo_id = photo_message(channel_id, message_id, date, text, data, grouped_id=grouped_id)
        self.writer.add_media(photo_id, data)
        self._post(channel_id, message, "photo", stored=True)

    def video(self, channel_id: int, message_id: int, date: datetime, text: str, thumb_lines: list[str],
              grouped_id: int | None = None, thumb: bytes | None = None) -> None:
        data = fake_video(f"video:{channel_id}:{message_id}")
        thumb = thumb or render_text_image(thumb_lines, size=(320, 180), background="#1d3557", color="#f1faee")
        message, document_id = video_message(channel_id, message_id, date, text, data, thumb, grouped_id=grouped_id)
        self.writer.add_media(document_id, data)
        self.writer.add_media(document_id, thumb, thumb=True)
        self._post(channel_id, message, "video", stored=True)

    def gif(self, channel_id: int, message_id: int, date: datetime, text: str, thumb_lines: list[str],
            grouped_id: int | None = None) -> None:
        data = fake_video(f"gif:{channel_id}:{message_id}", size=12_000)  # plays, as the videos do
        thumb = render_text_image(thumb_lines, size=(320, 180))
        message, document_id = gif_message(channel_id, message_id, date, text, data, thumb, grouped_id=grouped_id)
        self.writer.add_media(document_id, data)
        self.writer.add_media(document_id, thumb, thumb=True)
        self._post(channel_id, message, "gif", stored=True)

    def pdf(self, channel_id: int, message_id: int, date: datetime, text: str, name: str,
            grouped_id: int | None = None) -> None:
        data = fake_pdf(name)
        message, document_id = document_message(
            channel_id, message_id, date, text, mime="application/pdf", size=len(data),
            attributes=[types.DocumentAttributeFilename(file_name=name)], grouped_id=grouped_id,
        )
        self.writer.add_media(document_id, data)
        self._post(channel_id, message, "document", stored=True)

    def webpage(self, channel_id: int, message_id: int, date: datetime, text: str, url: str) -> None:
        self._post(channel_id, webpage_message(channel_id, message_id, date, text, url), "webpage",
                   stored=False, skip_reason="unsupported_media")
        self.skips.append({"channel_id": channel_id, "ref": f"message:{message_id}", "reason": "unsupported_media"})

    def poll(self, channel_id: int, message_id: int, date: datetime, question: str) -> None:
        self._post(channel_id, poll_message(channel_id, message_id, date, question), "poll",
                   stored=False, skip_reason="unsupported_media")
        self.skips.append({"channel_id": channel_id, "ref": f"message:{message_id}", "reason": "unsupported_media"})

    def service(self, channel_id: int, message_id: int, date: datetime) -> None:
        self.writer.add_message(channel_id, service_message(channel_id, message_id, date))
        self.skips.append({"channel_id": channel_id, "ref": f"message:{message_id}", "reason": "service_message"})

    def close(self) -> dict:
        self.writer.close()
        albums = []
        for album in self.albums.values():
            items = sorted(album["items"], key=lambda i: i["message_id"])
            kinds = {{"photo": "photo", "video": "video", "gif": "video"}.get(i["media_kind"] or "", "document")
                     for i in items}
            albums.append({
                "channel_id": album["channel_id"],
                "grouped_id": album["grouped_id"],
                "message_ids": [i["message_id"] for i in items],
                "media_kinds": [i["media_kind"] for i in items],
                "caption": next((i["text"] for i in items if i["text"].strip()), None),
                "album_kind": kinds.pop() if len(kinds) == 1 else "mixed",
            })
        expected = {
            "channels": self.channels,
            "tenants": self.tenants,
            "posts": sorted(self.posts, key=lambda p: (p["channel_id"], p["message_id"])),
            "skips": self.skips,
            "albums": sorted(albums, key=lambda a: (a["channel_id"], a["grouped_id"])),
            "span": {"start": self.span[0].isoformat(), "end": self.span[1].isoformat()},
        }
        (self.path / "expected.json").write_text(json.dumps(expected, indent=2, ensure_ascii=False) + "\n",
                                                 encoding="utf-8")
        return expected


LAB, NEWS, MIXED = 1111111111, 2222222222, 3333333333
SAMPLE_CHANNELS = [
    {"id": LAB, "access_hash": 5000000000000000001, "username": "album_lab", "title": "Album Lab"},
    {"id": NEWS, "access_hash": 5000000000000000002, "username": "novosti_test", "title": "Новости тест"},
    {"id": MIXED, "access_hash": 5000000000000000003, "username": "mixed_media", "title": "Mixed Media"},
]
SAMPLE_TENANTS = {"acme": [LAB, NEWS], "globex": [NEWS, MIXED]}


def build_sample_archive(path: str | Path) -> dict:
    """Write the sample archive to ``path`` (created if missing) and return its expectation."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    b = SampleBuilder(path, SAMPLE_CHANNELS, SAMPLE_TENANTS)

    def at(minute: int, second: int = 0) -> datetime:
        return SAMPLE_START + timedelta(minutes=minute, seconds=second)

    shared_grouped_id = 7000000000000000001  # the same grouped_id in two channels = two albums

    # Album Lab: English photo album, a Russian single, a mixed album whose caption is on item 3,
    # a service message, and an album posted across a window boundary (10:09:58 -> 10:10:05).
    b.text(LAB, 101, at(0, 30), "Welcome to Album Lab - a weekly photo digest.")
    b.photo(LAB, 102, at(1, 0), "Evening at the harbour", ["SUNSET", "OVER THE BAY"], shared_grouped_id)
    b.photo(LAB, 103, at(1, 1), "", ["HARBOUR", "LIGHTS"], shared_grouped_id)
    b.photo(LAB, 104, at(1, 2), "", ["FISHING", "BOATS"], shared_grouped_id)
    b.photo(LAB, 105, at(3, 10), "Фото дня", ["ПРИВЕТ", "МИР"])
    b.photo(LAB, 106, at(6, 0), "", ["STREET", "FOOD"], 7000000000000000002)
    b.video(LAB, 107, at(6, 1), "", ["MARKET", "VIDEO"], 7000000000000000002)
    b.photo(LAB, 108, at(6, 2), "Street food market tour", ["NOODLES"], 7000000000000000002)
    b.photo(LAB, 109, at(6, 3), "", ["DUMPLINGS"], 7000000000000000002)
    b.service(LAB, 110, at(7, 0))
    b.text(LAB, 111, at(8, 0), "Новый выпуск выйдет завтра.")
    b.photo(LAB, 112, at(9, 58), "Compass series", ["NORTH"], 7000000000000000003)
    b.photo(LAB, 113, at(10, 2), "", ["SOUTH"], 7000000000000000003)
    b.photo(LAB, 114, at(10, 5), "", ["EAST"], 7000000000000000003)

    # Новости тест: a Russian album sharing Album Lab's grouped_id, a PDF, a GIF, a web page
    # preview, an album of two documents captioned on its last item, and one of a GIF and a video.
    b.text(NEWS, 201, at(0, 45), "Главные новости дня")
    b.photo(NEWS, 202, at(2, 0), "Обзор города", ["МОСКВА"], shared_grouped_id)
    b.photo(NEWS, 203, at(2, 1), "", ["ПОГОДА"], shared_grouped_id)
    b.photo(NEWS, 204, at(2, 1), "", ["ТРАНСПОРТ"], shared_grouped_id)
    b.photo(NEWS, 205, at(2, 2), "", ["КУЛЬТУРА"], shared_grouped_id)
    b.pdf(NEWS, 206, at(11, 0), "Отчёт за неделю", "report.pdf")
    b.gif(NEWS, 207, at(12, 0), "Реакция редакции", ["GIF"])
    b.webpage(NEWS, 208, at(13, 0), "Читайте на сайте https://example.org/news", "https://example.org/news")
    b.pdf(NEWS, 209, at(16, 0), "", "agenda.pdf", 7000000000000000005)
    b.pdf(NEWS, 210, at(16, 1), "Документы заседания", "minutes.pdf", 7000000000000000005)
    b.gif(NEWS, 211, at(19, 0), "Итоги дня: аплодисменты в студии", ["GIF", "УРА"], 7000000000000000007)
    b.video(NEWS, 212, at(19, 1), "", ["СТУДИЯ"], 7000000000000000007)

    # Mixed Media: a poll, a video+video+photo album captioned on item 2, a single video.
    b.poll(MIXED, 301, at(4, 0), "Do you like drone footage?")
    b.video(MIXED, 302, at(14, 0), "", ["DRONE", "ONE"], 7000000000000000006)
    b.video(MIXED, 303, at(14, 1), "Drone footage", ["DRONE", "TWO"], 7000000000000000006)
    b.photo(MIXED, 304, at(14, 2), "", ["COASTLINE"], 7000000000000000006)
    b.video(MIXED, 305, at(17, 0), "Timelapse", ["CITY", "TIMELAPSE"])
    b.text(MIXED, 306, at(18, 30), "That's all for today")
    return b.close()


def differences_from_expectation(conn: psycopg.Connection, expected: dict) -> list[str]:
    """What the stored posts and albums of the archive's channels get wrong compared with its expectation."""
    problems = []
    channels = {c["id"] for c in expected["channels"]}
    posts = {(r["channel_id"], r["message_id"]): r for r in db.fetch_all(conn, "posts_all")
             if r["channel_id"] in channels}
    for post in expected["posts"]:
        row = posts.get((post["channel_id"], post["message_id"]))
        if row is None:
            problems.append(f"missing post {post['channel_id']}/{post['message_id']}")
            continue
        got = (row["text"], row["media_kind"], row["grouped_id"], row["media_sha256"] is not None,
               row["media_skip_reason"])
        want = (post["text"], post["media_kind"], post["grouped_id"], post["media_stored"],
                post["media_skip_reason"])
        if got != want:
            problems.append(f"post {post['channel_id']}/{post['message_id']}: stored {got}, expected {want}")
    if len(posts) != len(expected["posts"]):
        problems.append(f"{len(posts)} posts stored, {len(expected['posts'])} expected")
    stored = {(a["channel_id"], a["grouped_id"]): a for a in db.fetch_all(conn, "albums_with_items")
              if a["channel_id"] in channels}
    for album in expected["albums"]:
        row = stored.get((album["channel_id"], album["grouped_id"]))
        if row is None:
            problems.append(f"missing album {album['channel_id']}/{album['grouped_id']}")
            continue
        got = (row["message_ids"], row["media_kinds"], row["caption_text"], row["album_kind"], row["items_count"])
        want = (album["message_ids"], album["media_kinds"], album["caption"], album["album_kind"],
                len(album["message_ids"]))
        if got != want:
            problems.append(f"album {album['channel_id']}/{album['grouped_id']}: stored {got}, expected {want}")
    if len(stored) != len(expected["albums"]):
        problems.append(f"{len(stored)} albums stored, {len(expected['albums'])} expected")
    return problems


def tiny_image(seed: str) -> bytes:
    """A distinct 20x16 JPEG per seed: unique content (no dedupe), too small for OCR (fast vision)."""
    rng = random.Random(seed)
    image = Image.new("RGB", (20, 16), tuple(rng.randrange(256) for _ in range(3)))
    for _ in range(12):
        image.putpixel((rng.randrange(20), rng.randrange(16)), tuple(rng.randrange(256) for _ in range(3)))
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=90)
    return out.getvalue()


def build_synthetic_archive(path: str | Path, albums: int) -> dict:
    """An archive of ``albums`` albums over the sample's three channels, for the benchmark.

    Albums of 2-4 photos (every 7th has a video item), with text posts after every second
    album and single photos after every third; images are tiny and distinct (see
    ``tiny_image``), so the figures measure the pipeline, not OCR. Messages are 5 s apart.
    """
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    b = SampleBuilder(path, SAMPLE_CHANNELS, SAMPLE_TENANTS)
    next_id = {c["id"]: 1 for c in SAMPLE_CHANNELS}
    clock = SAMPLE_START

    def new_id(channel_id: int) -> int:
        nonlocal clock
        clock += timedelta(seconds=5)
        next_id[channel_id] += 1
        return next_id[channel_id] - 1

    for n in range(albums):
        channel_id = SAMPLE_CHANNELS[n % len(SAMPLE_CHANNELS)]["id"]
        grouped_id = 8_000_000_000_000_000_000 + n
        for position in range(2 + n % 3):
            message_id = new_id(channel_id)
            caption = f"Album {n}: synthetic set number {n}" if position == 0 else ""
            if position == 1 and n % 7 == 0:
                b.video(channel_id, message_id, clock, caption, [], grouped_id,
                        thumb=tiny_image(f"thumb:{channel_id}:{message_id}"))
            else:
                b.photo(channel_id, message_id, clock, caption, [], grouped_id,
                        data=tiny_image(f"photo:{channel_id}:{message_id}"))
        if n % 2 == 0:
            message_id = new_id(channel_id)
            b.text(channel_id, message_id, clock, f"Text post {message_id} after album {n}")
        if n % 3 == 0:
            message_id = new_id(channel_id)
            b.photo(channel_id, message_id, clock, f"Single photo {message_id}", [],
                    data=tiny_image(f"single:{channel_id}:{message_id}"))
    return b.close()


# The steady-state archive: many channels, a little traffic each (the benchmark's 5-minute windows).
STEADY_MARK = datetime(2026, 1, 6, 12, 0, tzinfo=UTC)  # the first run sees the channels as of here
STEADY_WINDOW = timedelta(minutes=5)                    # then one window of new messages
STEADY_BASE_ID = 4_000_000_000


def steady_channels(count: int) -> list[dict]:
    return [{"id": STEADY_BASE_ID + i, "access_hash": 6_000_000_000_000_000_000 + i,
             "username": f"steady_{i:04d}", "title": f"Steady channel {i}"} for i in range(count)]


def build_steady_archive(path: str | Path, channels: int, changed: int, windows: int = 1) -> dict:
    """``channels`` channels, each with two text posts before ``STEADY_MARK`` (what a first run
    pulls to set the marks); in each of ``windows`` 5-minute windows after it, ``changed`` of them
    (spread evenly over the list) post 1-3 text or photo posts, and about every 4th of those an
    album of 2-4 photos (the windows alike). Images are tiny and distinct (``tiny_image``): vision
    is not what is measured. Tenant ``acme`` subscribes to every channel, ``globex`` to every second one.
    """
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    listed = steady_channels(channels)
    ids = [c["id"] for c in listed]
    b = SampleBuilder(path, listed, {"acme": ids, "globex": ids[::2]},
                      span=(STEADY_MARK - timedelta(minutes=30), STEADY_MARK + windows * STEADY_WINDOW))
    for number, channel_id in enumerate(ids):
        for message_id in (1, 2):
            when = STEADY_MARK - timedelta(minutes=30) + timedelta(seconds=number % 600 + 600 * (message_id - 1))
            b.text(channel_id, message_id, when, f"Steady {number}: earlier post {message_id}")
    step = channels / changed if changed else 0
    next_id = dict.fromkeys(ids, 3)
    for window in range(windows):
        start = STEADY_MARK + window * STEADY_WINDOW
        for k in range(changed):
            channel_id = ids[int(k * step)]
            message_id, when = next_id[channel_id], start + timedelta(seconds=10 + k % 60)
            for position in range(1 + k % 3):
                if (k + position) % 2:
                    b.photo(channel_id, message_id, when, f"Photo {message_id} of channel {channel_id}", [],
                            data=tiny_image(f"steady:{channel_id}:{message_id}"))
                else:
                    b.text(channel_id, message_id, when, f"News {message_id} of channel {channel_id}")
                message_id, when = message_id + 1, when + timedelta(seconds=20)
            if k % 4 == 0:
                grouped_id = 9_000_000_000_000_000_000 + window * 100_000 + k
                for position in range(2 + (k // 4) % 3):
                    caption = f"Album {k} of channel {channel_id}" if position == 0 else ""
                    b.photo(channel_id, message_id, when, caption, [], grouped_id,
                            data=tiny_image(f"steady:{channel_id}:{message_id}"))
                    message_id, when = message_id + 1, when + timedelta(seconds=1)
            next_id[channel_id] = message_id
    return b.close()


HISTORY_START = datetime(2026, 2, 1, tzinfo=UTC)  # the first day of a history archive
HISTORY_BASE_ID = 4_500_000_000


def history_channels(count: int) -> list[dict]:
    return [{"id": HISTORY_BASE_ID + i, "access_hash": 6_500_000_000_000_000_000 + i,
             "username": f"past_{i:03d}", "title": f"Channel with a past {i}"} for i in range(count)]


def build_history_archive(path: str | Path, channels: int = 3, days: int = 3, per_day: int = 15,
                          quiet: bool = True) -> dict:
    """A past to import: ``days`` days from ``HISTORY_START``, ``channels`` channels with
    ``per_day`` messages a day each — text posts, and an album of 3 tiny photos captioned on its
    first item; the first channel's album of every day but the last is posted across midnight
    (23:59:58 to 00:00:02) — and, with ``quiet``, one more channel with 3 messages over the whole
    span. Message ids follow dates, as on Telegram. Tenant ``acme`` subscribes to them all.
    """
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    listed = history_channels(channels + (1 if quiet else 0))
    ids = [c["id"] for c in listed]
    b = SampleBuilder(path, listed, {"acme": ids}, span=(HISTORY_START, HISTORY_START + timedelta(days=days)))
    for number, channel_id in enumerate(ids):
        events: list[tuple[datetime, str, int | None]] = []  # (when, kind, grouped_id)
        for day in range(days):
            start = HISTORY_START + timedelta(days=day)
            if number == channels:  # the quiet one
                if day in {0, days // 2, days - 1}:
                    events.append((start + timedelta(hours=9), "text", None))
                continue
            texts = per_day - 3
            events += [(start + timedelta(seconds=(k + 1) * 86_400 // (texts + 1) - 600), "text", None)
                       for k in range(texts)]
            grouped_id = 8_500_000_000_000_000_000 + number * 10_000 + day
            across_midnight = number == 0 and day < days - 1
            offsets = [86_398, 86_399, 86_402] if across_midnight else [43_200, 43_201, 43_202]
            events += [(start + timedelta(seconds=s), "photo", grouped_id) for s in offsets]
        for message_id, (when, kind, grouped_id) in enumerate(sorted(events, key=lambda e: e[0]), start=1):
            if kind == "text":
                b.text(channel_id, message_id, when, f"Post {message_id} of channel {number}, {when:%Y-%m-%d %H:%M}")
                continue
            first = not any(p["grouped_id"] == grouped_id for p in b.posts if p["channel_id"] == channel_id)
            caption = f"Album of {when:%Y-%m-%d} in channel {number}" if first else ""
            b.photo(channel_id, message_id, when, caption, [], grouped_id,
                    data=tiny_image(f"history:{channel_id}:{message_id}"))
    return b.close()


def register_sample(conn: psycopg.Connection, expected: dict) -> None:
    """Register the channels, tenants and subscriptions a sample archive expects."""
    register_archive(conn, expected, expected["tenants"])


# The live archive: channels posting while the pipeline runs (the listener's tests, the freshness benchmark).
LIVE_BASE_ID = 4_800_000_000


def live_channels(count: int, first: int = 0) -> list[dict]:
    return [{"id": LIVE_BASE_ID + i, "access_hash": 6_800_000_000_000_000_000 + i,
             "username": f"live_{i:03d}", "title": f"Live channel {i}"} for i in range(first, first + count)]


def build_live_archive(path: str | Path, channels: int, start: datetime, minutes: float, albums: int,
                       seed: int = 7, first: int = 0, tenant: str = "acme") -> dict:
    """``channels`` channels that post while the pipeline runs: each has one text post an hour
    before ``start`` (what a first run pulls to set the marks); then ``albums`` albums of 2-4
    tiny photos, each from a channel drawn at random and posted at a random moment of the
    ``minutes`` after ``start``, its items 1-3 s apart (Telegram sends them one by one), some
    followed by a text post. Dates are on the wall clock: the archive transport posts a message
    when its date comes (``archive_updates``). The expectation adds ``live``: per album its
    channel, grouped id, message ids and the date of its last item (where latency counts from).
    ``tenant`` subscribes to every channel; ``first`` numbers them (archives to add to one another).
    """
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    start = start.replace(microsecond=0)  # Telegram's dates are whole seconds
    listed = live_channels(channels, first)
    ids = [c["id"] for c in listed]
    end = start + timedelta(minutes=minutes)
    b = SampleBuilder(path, listed, {tenant: ids}, span=(start - timedelta(hours=1), end + timedelta(minutes=1)))
    for channel_id in ids:
        b.text(channel_id, 1, start - timedelta(hours=1), f"Live channel {channel_id}: an earlier post")
    moments = sorted((rng.randrange(int(minutes * 60)), rng.choice(ids)) for _ in range(albums))
    next_id, busy_until = dict.fromkeys(ids, 2), dict.fromkeys(ids, start)
    live = []
    for number, (offset, channel_id) in enumerate(moments):
        when = max(start + timedelta(seconds=offset), busy_until[channel_id])  # one post at a time per channel
        grouped_id = 7_500_000_000_000_000_000 + first * 10_000 + number
        message_ids = []
        for position in range(rng.randint(2, 4)):
            message_id = next_id[channel_id]
            caption = f"Live album {number} of channel {channel_id}" if position == 0 else ""
            b.photo(channel_id, message_id, when, caption, [], grouped_id,
                    data=tiny_image(f"live:{channel_id}:{message_id}"))
            message_ids.append(message_id)
            next_id[channel_id] += 1
            last, when = when, when + timedelta(seconds=rng.randint(1, 3))
        live.append({"channel_id": channel_id, "grouped_id": grouped_id, "message_ids": message_ids,
                     "last_item_at": last.isoformat()})
        if rng.random() < 0.3:
            b.text(channel_id, next_id[channel_id], when, f"Live post after album {number}")
            next_id[channel_id] += 1
        busy_until[channel_id] = when + timedelta(seconds=1)
    expected = b.close()
    expected["live"] = live
    (path / "expected.json").write_text(json.dumps(expected, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return expected
