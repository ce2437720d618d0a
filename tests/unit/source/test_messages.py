"""Reading Telethon messages: media kinds, sizes, texts, skips."""

from datetime import UTC, datetime

import pytest
from telethon import types

from devtools.sample import (
    document_message,
    gif_message,
    photo_message,
    poll_message,
    service_message,
    text_message,
    video_message,
    webpage_message,
)
from include.album.source.messages import file_extension, media_ref, read_messages, to_post

T = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)


def test_media_kinds_and_sizes_are_read_without_downloading():
    photo, photo_id = photo_message(1, 1, T, "", b"x" * 500, width=640, height=480)
    video, video_id = video_message(1, 2, T, "", b"v" * 900, b"t" * 50)
    gif, _ = gif_message(1, 3, T, "", b"g" * 10, b"t")
    pdf, _ = document_message(1, 4, T, "", mime="application/pdf", size=123,
                              attributes=[types.DocumentAttributeFilename(file_name="a.pdf")])
    assert media_ref(photo) == media_ref(photo).__class__(kind="photo", file_id=photo_id, mime="image/jpeg",
                                                          size=500, width=640, height=480)
    ref = media_ref(video)
    assert (ref.kind, ref.file_id, ref.size, ref.has_thumb, ref.downloadable) == ("video", video_id, 900, True, True)
    assert media_ref(gif).kind == "gif"
    assert (media_ref(pdf).kind, media_ref(pdf).file_name) == ("document", "a.pdf")


def test_polls_web_pages_and_text_are_not_downloadable():
    assert media_ref(text_message(1, 1, T, "hi")) is None
    page = media_ref(webpage_message(1, 2, T, "see https://example.org", "https://example.org"))
    assert (page.kind, page.downloadable) == ("webpage", False)
    poll = poll_message(1, 3, T, "Question?")
    assert (media_ref(poll).kind, media_ref(poll).downloadable) == ("poll", False)
    assert to_post(1, poll).text == "Question?"


def test_service_messages_become_recorded_skips():
    posts, skips = read_messages(7, [text_message(7, 1, T, "a"), service_message(7, 2, T)])
    assert [p.message_id for p, _ in posts] == [1]
    assert skips[0].reason == "service_message" and skips[0].ref == "message:2"
    assert "channel 7 message 2" in skips[0].detail


@pytest.mark.parametrize(("mime", "name", "extension"), [
    ("image/jpeg", None, "jpg"), ("video/mp4", None, "mp4"), ("application/pdf", None, "pdf"),
    ("image/png", None, "png"), ("application/x-unknown-thing", "notes.md", "md"),
    (None, None, "bin"), ("application/x-unknown-thing", "weird.name/../x", "bin"),
])
def test_file_extension(mime, name, extension):
    assert file_extension(mime, name) == extension


def test_nul_in_text_and_a_header_breaking_mime_type_are_made_storable_and_recorded():
    text = text_message(1, 1, T, "before\x00after")
    pdf, _ = document_message(1, 2, T, "", mime="application/pdf\r\nX-Injected: 1", size=10)
    posts, skips = read_messages(1, [text, pdf])
    assert posts[0][0].text == "before\ufffdafter"
    assert posts[1][0].media.mime == "application/octet-stream"
    assert [(s.ref, s.reason) for s in skips] == [("message:1", "text_nul_replaced"),
                                                  ("message:2", "invalid_mime_type")]


@pytest.mark.parametrize(("mime", "kept"), [("image/png", True), ("application/vnd.ms-excel", True),
                                            ("image/png\x00", False), ("text", False), ("a/" + "b" * 300, False),
                                            ("", False), (None, False)])
def test_clean_mime_keeps_only_real_mime_types(mime, kept):
    from include.album.source.messages import clean_mime

    assert (clean_mime(mime) == mime) is kept
