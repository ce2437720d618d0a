"""Local vision: OCR of the sample images, bounded decoding, item input rules, the OpenAI fallback."""

import io
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from PIL import Image

from devtools.sample import render_text_image
from include.album.domain.summary import phash_distance
from include.album.providers.vision import (
    LocalVision,
    OpenAIVision,
    UnusableImage,
    decode_image,
    tesseract_available,
    text_language,
    validate_item,
)
from include.album.providers.vision.facts import ImageFacts
from include.album.providers.vision.tesseract import Reading, Word
from include.album.steps.assembly import VisionInput, vision_input

needs_tesseract = pytest.mark.skipif(not tesseract_available(), reason="tesseract-ocr is installed by .ci/run")


def png(size: tuple[int, int], color="white") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def local() -> LocalVision:
    return LocalVision()


@needs_tesseract
@pytest.mark.parametrize(("lines", "words", "lang"), [
    (["SUNSET", "OVER THE BAY"], ["SUNSET", "OVER", "THE", "BAY"], "en"),
    (["ПРИВЕТ", "МИР"], ["ПРИВЕТ", "МИР"], "ru"),
    (["МОСКВА"], ["МОСКВА"], "ru"),
    (["DRONE", "ONE"], ["DRONE", "ONE"], "en"),
])
def test_ocr_reads_the_russian_and_english_words_of_sample_images(local, lines, words, lang):
    result = local.analyse(render_text_image(lines))
    assert result["ocr"]["text"].split() == words
    assert result["ocr"]["lang"] == lang
    assert result["ocr"]["engine"].startswith("tesseract-")
    assert "text" in result["labels"] and words[0].lower() in result["labels"]


def test_result_follows_item_schema_v1(local):
    result = local.analyse(render_text_image(["HELLO"]))
    for field in ("kind", "description", "labels", "ocr", "is_meme", "phash", "width", "height", "provider",
                  "model", "analyzed_at"):
        assert field in result
    assert result["kind"] in ("photo", "meme", "screenshot", "document", "infographic", "other")
    assert (result["width"], result["height"], result["provider"]) == (800, 450, "local")


def test_image_with_no_text_has_no_ocr(local):
    result = local.analyse(png((400, 300), "#336699"))
    assert result["ocr"] is None and "text" not in result["labels"]


def test_one_pixel_image_is_analysed_as_other(local):
    result = local.analyse(png((1, 1)))
    assert (result["kind"], result["width"], result["ocr"]) == ("other", 1, None)


def measured(**facts) -> ImageFacts:
    """What the local analysis measures of an 800x450 colour photo without text, but for ``facts``."""
    return ImageFacts(**{"width": 800, "height": 450, "phash": "0" * 16, "reading": Reading(()), "ocr": None,
                         "brightness": 120.0, "contrast": 50.0, "colorfulness": 40.0, "edge_density": 0.05,
                         "flat": 0.1, "saturated": 0.2, "palette": ("blue", "green"), "hues": 2, "faces": 0,
                         **facts})


def test_no_label_says_only_photo_or_other_and_a_kind_that_sets_an_image_apart_is_one(local):
    """"photo" (no rule says more) and "other" (no rule could tell) would be on nearly every
    album: they stay the item's kind and are no label. A screenshot's kind is one."""
    photo = local.result_from(measured())
    assert photo["kind"] == "photo" and photo["labels"] == ["blue", "green"]
    tiny = local.result_from(measured(width=20, height=16))
    assert tiny["kind"] == "other" and tiny["labels"] == []
    card = local.result_from(measured(flat=0.9))  # a plain drawn card, as the sample's video previews
    assert card["kind"] == "other" and card["labels"] == []

    words = tuple(Word(text, 95.0, (1, 1, line), 0.5) for line, text in enumerate(
        "Settings Account Privacy Notifications Language Storage Devices Help".split()))
    screen = local.result_from(measured(flat=0.9, reading=Reading(words), palette=("white",),
                                        ocr={"text": "Settings", "lang": "en", "engine": "tesseract-5"}))
    assert screen["kind"] == "screenshot" and screen["labels"][:3] == ["screenshot", "text", "english-text"]


@pytest.mark.parametrize(("data", "reason"), [
    (b"", "empty_file"),
    (b"definitely not an image", "not_an_image"),
    (render_text_image(["CUT"])[:2000], "corrupt_image"),
])
def test_broken_bytes_are_terminal_skips_with_a_reason(data, reason):
    with pytest.raises(UnusableImage) as raised:
        decode_image(data)
    assert raised.value.reason == reason


def test_decompression_bomb_is_refused_before_decoding():
    buffer = io.BytesIO()
    Image.new("1", (20000, 20000)).save(buffer, format="PNG")  # 400 Mpixel, ~50 KB on disk
    assert len(buffer.getvalue()) < 200_000
    started = time.monotonic()
    with pytest.raises(UnusableImage) as raised:
        decode_image(buffer.getvalue())
    assert raised.value.reason == "decompression_bomb"
    assert time.monotonic() - started < 2


def test_phash_of_a_recompressed_copy_is_near_and_of_another_image_far(local):
    original = render_text_image(["HARBOUR"])
    image = Image.open(io.BytesIO(original)).resize((640, 360))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=60)
    a, b = local.analyse(original)["phash"], local.analyse(buffer.getvalue())["phash"]
    other = local.analyse(render_text_image(["ДРУГОЕ", "ИЗОБРАЖЕНИЕ"], background="#202020", color="#ffcc00"))
    assert phash_distance(a, b) <= 8 < phash_distance(a, other["phash"])


def test_text_language():
    assert (text_language("Привет"), text_language("Hello"), text_language("Привет Hello world"),
            text_language("1234")) == ("ru", "en", "ru+en", None)


def item(**overrides) -> dict:
    base = {"media_kind": "photo", "mime": "image/jpeg", "sha256": "a" * 64, "s3_key": "media/aa/x.jpg",
            "thumb_sha256": None, "thumb_s3_key": None, "media_skip_reason": None, "media_pending": False,
            "preview_pending": False}
    return {**base, **overrides}


def test_vision_input_rules():
    assert vision_input(item()).sha256 == "a" * 64
    video = vision_input(item(media_kind="video", mime="video/mp4", thumb_sha256="b" * 64, thumb_s3_key="k"))
    assert (video.sha256, video.s3_key) == ("b" * 64, "k")  # a video is analysed through its preview
    assert vision_input(item(media_kind="video", mime="video/mp4")).skip_reason == "no_thumbnail"
    assert vision_input(item(media_kind="document", mime="application/pdf")).skip_reason == \
        "not_an_image:application/pdf"
    assert vision_input(item(media_kind="document", mime="image/png")).sha256 == "a" * 64
    assert vision_input(item(sha256=None, media_skip_reason="media_too_large")).skip_reason == \
        "media_not_stored:media_too_large"
    assert vision_input(item(media_kind=None, mime=None, sha256=None)).skip_reason == "no_media"


def test_an_item_whose_media_or_preview_a_later_pull_fetches_again_is_pending_not_skipped():
    pending = VisionInput()
    assert vision_input(item(sha256=None, s3_key=None, media_pending=True)) == pending
    assert vision_input(item(media_kind="video", mime="video/mp4", preview_pending=True)) == pending
    assert vision_input(item(sha256=None, media_skip_reason="download_failed")).skip_reason == \
        "media_not_stored:download_failed"  # given up: a terminal skip


def test_validate_item_rejects_answers_outside_the_schema():
    assert validate_item({"kind": "meme", "description": " A cat ", "labels": ["Cat"]}) == {
        "kind": "meme", "description": "A cat", "labels": ["cat"], "is_meme": True}
    for bad in ([], {"kind": "selfie", "description": "x"}, {"kind": "photo", "description": ""},
                {"kind": "photo", "description": "x", "labels": "cat"}):
        with pytest.raises(ValueError):
            validate_item(bad)


_VALID = {"kind": "meme", "description": "A cat in a box", "labels": ["Cat", "box"], "is_meme": True}
# What VLM servers really send back, by behaviour: (HTTP status, extra headers, seconds to wait, content).
_ANSWERS = {
    "valid": (200, {}, 0, json.dumps(_VALID)),
    "malformed": (200, {}, 0, '{"kind": "meme", "description": '),  # cut off at max_tokens
    "timeout": (200, {}, 3, "{}"),
    "slow": (200, {}, 0.4, json.dumps(_VALID)),  # slower than usual, inside the timeout
    "fenced": (200, {}, 0, "```json\n" + json.dumps(_VALID, indent=2) + "\n```\nThe image shows a cat."),
    "prose": (200, {}, 0, "Sure! Here is the JSON you asked for: " + json.dumps(_VALID) + " Let me know."),
    "no_json": (200, {}, 0, "I cannot help with identifying this image."),
    "wrong_schema": (200, {}, 0, json.dumps({"type": "photograph", "caption": "A cat"})),
    "rate_limited": (429, {"Retry-After": "0.2"}, 0, '{"error": {"message": "Rate limit reached"}}'),
    "rate_limited_long": (429, {"Retry-After": "3600"}, 0, '{"error": {"message": "Rate limit reached"}}'),
    "overloaded": (503, {"Retry-After": "0.1"}, 0, '{"error": {"message": "Server overloaded"}}'),
}


class _FakeEndpoint(BaseHTTPRequestHandler):
    """A local OpenAI-compatible server: answers from a queue of behaviours (``_ANSWERS``)."""

    behaviours: list[str] = []
    requests: list[dict] = []

    def do_POST(self):  # noqa: N802 - http.server's naming
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append({"path": self.path, "body": body, "auth": self.headers.get("Authorization")})
        status, headers, delay, content = _ANSWERS[type(self).behaviours.pop(0)]
        time.sleep(delay)
        if status == 200:
            content = json.dumps({"choices": [{"message": {"role": "assistant", "content": content}}]})
        payload = content.encode()
        try:
            self.send_response(status)
            for name, value in {"Content-Type": "application/json", **headers}.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, *args):
        pass


@pytest.fixture
def endpoint():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeEndpoint)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _FakeEndpoint.behaviours, _FakeEndpoint.requests = [], []
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()


def test_openai_provider_valid_then_malformed_then_timeout(endpoint, local):
    provider = OpenAIVision(endpoint, "test-vision-model", api_key="local-test-key", timeout=1.0, local=local)
    image = render_text_image(["HELLO"])
    _FakeEndpoint.behaviours = ["valid", "malformed", "timeout"]

    valid = provider.analyse(image)
    assert (valid["provider"], valid["model"], valid["kind"], valid["is_meme"]) == (
        "openai", "test-vision-model", "meme", True)
    assert valid["labels"] == ["cat", "box"] and valid["description"] == "A cat in a box"
    local_result = local.analyse(image)
    assert valid["phash"] == local_result["phash"] and valid["ocr"] == local_result["ocr"]  # local kept
    request = _FakeEndpoint.requests[0]
    assert request["path"] == "/v1/chat/completions" and request["auth"] == "Bearer local-test-key"
    assert request["body"]["messages"][0]["content"][1]["image_url"]["url"].startswith("data:image/jpeg;base64,")

    malformed = provider.analyse(image)
    assert malformed["provider"] == "local" and "JSONDecodeError" in malformed["fallback_reason"]

    started = time.monotonic()
    timed_out = provider.analyse(image)
    assert timed_out["provider"] == "local" and "Timeout" in timed_out["fallback_reason"]
    assert time.monotonic() - started < 2.5
    assert provider.key == "openai:test-vision-model:v1"


def test_openai_provider_takes_json_in_a_fence_or_after_prose_and_waits_a_slow_answer(endpoint, local):
    provider = OpenAIVision(endpoint, "qwen2.5-vl-3b", timeout=2.0, local=local)
    image = render_text_image(["HELLO"])
    _FakeEndpoint.behaviours = ["fenced", "prose", "slow"]
    for _ in range(3):
        answer = provider.analyse(image)
        assert (answer["provider"], answer["kind"], answer["description"]) == ("openai", "meme", "A cat in a box")


def test_openai_provider_falls_back_on_answers_outside_the_schema(endpoint, local):
    provider = OpenAIVision(endpoint, "llava", timeout=2.0, local=local)
    image = render_text_image(["HELLO"])
    _FakeEndpoint.behaviours = ["no_json", "wrong_schema"]
    prose, wrong = provider.analyse(image), provider.analyse(image)
    assert prose["provider"] == "local" and "no JSON object in the answer" in prose["fallback_reason"]
    assert wrong["provider"] == "local" and "kind None is not one of" in wrong["fallback_reason"]
    assert prose["ocr"] == local.analyse(image)["ocr"]  # the local result, whole


def test_openai_provider_waits_out_a_short_retry_after_and_falls_back_on_a_long_one(endpoint, local):
    provider = OpenAIVision(endpoint, "qwen2.5-vl-3b", timeout=2.0, local=local)
    image = render_text_image(["HELLO"])
    _FakeEndpoint.behaviours = ["rate_limited", "overloaded", "valid"]
    assert provider.analyse(image)["provider"] == "openai"
    assert len(_FakeEndpoint.requests) == 3  # asked again after each wait

    _FakeEndpoint.behaviours = ["rate_limited_long"]
    long_wait = provider.analyse(image)
    assert long_wait["provider"] == "local" and "429" in long_wait["fallback_reason"]
    assert len(_FakeEndpoint.requests) == 4  # not asked again: an hour's wait would stall the task

    _FakeEndpoint.behaviours = ["rate_limited"] * 3
    still_limited = provider.analyse(image)
    assert still_limited["provider"] == "local" and "429" in still_limited["fallback_reason"]
    assert len(_FakeEndpoint.requests) == 4 + 1 + OpenAIVision.RATE_LIMIT_RETRIES
