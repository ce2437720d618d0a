"""Per-image vision analysis (item schema v1): one interface, two providers.

* ``LocalVision`` (default, offline): Tesseract OCR (rus+eng), a perceptual hash, image
  statistics, a heuristic kind/meme guess and a templated description. No model weights
  ship in any package index, so kind, labels and description are heuristics; real ones come
  from the OpenAI-compatible provider.
* ``OpenAIVision``: any OpenAI-compatible ``/chat/completions`` endpoint with vision
  (OpenAI, vLLM, Ollama). Its JSON answer is validated against the item schema; the local
  hash and OCR are always kept; on any error, timeout or invalid answer it falls back to
  the local result and says why.

Decoding is bounded (bytes, pixels, OCR time): a hostile image yields a terminal skip with a
reason, never a hung or crashed task.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import re
import shutil
import time
import warnings
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from PIL import Image, ImageFilter, ImageStat, UnidentifiedImageError

log = logging.getLogger(__name__)

SCHEMA_VERSION = "v1"
KINDS = ("photo", "meme", "screenshot", "document", "infographic", "other")
MAX_IMAGE_BYTES = 20 * 1024 * 1024
MAX_IMAGE_PIXELS = 40_000_000
OCR_TIMEOUT_SECONDS = 20
OCR_MIN_SIDE = 24
OCR_MIN_CONFIDENCE = 55
OCR_LANGUAGE_ORDERS = ("eng+rus", "rus+eng")


class UnusableImage(Exception):
    """The bytes cannot be analysed as an image: a terminal skip, cached like a result."""

    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class ImageFacts:
    """What the local analysis measures; the OpenAI provider keeps these too."""

    width: int
    height: int
    phash: str
    ocr: dict | None  # {"text", "lang", "engine"} or None
    brightness: float  # 0..255 mean luminance
    contrast: float  # luminance standard deviation
    colorfulness: float  # mean chroma, 0 for greyscale
    edge_density: float  # share of strong edges, high for text and UI
    light_background: float  # share of near-white pixels


class VisionProvider(Protocol):
    name: str
    model: str

    @property
    def key(self) -> str: ...

    def analyse(self, data: bytes) -> dict: ...


def decode_image(data: bytes) -> Image.Image:
    """Open image bytes within limits; raise ``UnusableImage`` with the reason otherwise."""
    if not data:
        raise UnusableImage("empty_file", "the file has zero bytes")
    if len(data) > MAX_IMAGE_BYTES:
        raise UnusableImage("image_too_large", f"{len(data)} bytes exceed the {MAX_IMAGE_BYTES}-byte vision limit")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            width, height = image.size
            if width * height > MAX_IMAGE_PIXELS:
                raise UnusableImage("decompression_bomb",
                                    f"{width}x{height} pixels exceed the {MAX_IMAGE_PIXELS}-pixel limit")
            image.load()
    except UnusableImage:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise UnusableImage("decompression_bomb", str(exc)) from exc
    except UnidentifiedImageError as exc:
        raise UnusableImage("not_an_image", "the bytes are not an image format Pillow can read") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise UnusableImage("corrupt_image", f"the image is damaged ({exc})") from exc
    return image.convert("RGB")


def phash(image: Image.Image) -> str:
    import imagehash

    return str(imagehash.phash(image))


_CYRILLIC = re.compile(r"[А-Яа-яЁё]")
_LATIN = re.compile(r"[A-Za-z]")


def text_language(text: str) -> str | None:
    cyrillic, latin = len(_CYRILLIC.findall(text)), len(_LATIN.findall(text))
    if not cyrillic and not latin:
        return None
    if cyrillic and latin and min(cyrillic, latin) / max(cyrillic, latin) > 0.2:
        return "ru+en"
    return "ru" if cyrillic > latin else "en"


def tesseract_available() -> bool:
    return shutil.which("tesseract") is not None


def _read(image: Image.Image, languages: str) -> tuple[str, float]:
    """One Tesseract pass: confident words by line, and their mean confidence."""
    import pytesseract

    data = pytesseract.image_to_data(image, lang=languages, timeout=OCR_TIMEOUT_SECONDS,
                                     output_type=pytesseract.Output.DICT)
    lines: dict[tuple[int, int, int], list[str]] = {}
    confidences = []
    for i, word in enumerate(data["text"]):
        word, confidence = word.strip(), float(data["conf"][i])
        if word and confidence >= OCR_MIN_CONFIDENCE and re.search(r"\w", word):
            lines.setdefault((data["block_num"][i], data["par_num"][i], data["line_num"][i]), []).append(word)
            confidences.append(confidence)
    text = "\n".join(" ".join(words) for _, words in sorted(lines.items()))
    return text, (sum(confidences) / len(confidences) if confidences else 0.0)


def ocr(image: Image.Image) -> dict | None:
    """Tesseract (Russian + English): confident words only; None when there is no text (or no Tesseract).

    Capital letters shared by both alphabets (МОСКВА / MOCKBA, DRONE / ОКОМЕ) are read as
    whichever language Tesseract tries first, so both orders are read and the more confident
    reading wins.
    """
    if min(image.size) < OCR_MIN_SIDE or not tesseract_available():
        return None
    import pytesseract

    grey = image.convert("L")
    try:
        text, confidence = max((_read(grey, languages) for languages in OCR_LANGUAGE_ORDERS), key=lambda r: r[1])
    except RuntimeError as exc:  # pytesseract's timeout
        log.warning("OCR gave up after %ss: %s", OCR_TIMEOUT_SECONDS, exc)
        return None
    if not text:
        return None
    version = str(pytesseract.get_tesseract_version()).split()[0]
    return {"text": text, "lang": text_language(text), "engine": f"tesseract-{version}",
            "confidence": round(confidence, 1)}


def image_facts(image: Image.Image) -> ImageFacts:
    width, height = image.size
    small = image.copy()
    small.thumbnail((256, 256))
    grey = small.convert("L")
    stat = ImageStat.Stat(grey)
    hsv = small.convert("HSV")
    saturation = ImageStat.Stat(hsv.getchannel("S")).mean[0]
    edges = grey.filter(ImageFilter.FIND_EDGES)
    histogram = edges.histogram()
    strong = sum(histogram[64:]) / max(1, sum(histogram))
    grey_histogram = grey.histogram()
    light = sum(grey_histogram[225:]) / max(1, sum(grey_histogram))
    return ImageFacts(
        width=width, height=height, phash=phash(image), ocr=ocr(image),
        brightness=round(stat.mean[0], 1), contrast=round(stat.stddev[0], 1), colorfulness=round(saturation, 1),
        edge_density=round(strong, 4), light_background=round(light, 4),
    )


def guess_kind(facts: ImageFacts) -> tuple[str, bool]:
    """Heuristic kind and meme flag from measurements (documented rules, not a model)."""
    words = len(facts.ocr["text"].split()) if facts.ocr else 0
    if min(facts.width, facts.height) < 32:
        return "other", False
    if words >= 25 and facts.light_background > 0.6 and facts.colorfulness < 40:
        return "document", False
    if words >= 8 and facts.edge_density > 0.08:
        return "screenshot", False
    if 1 <= words <= 12 and facts.colorfulness >= 40 and facts.contrast >= 40:
        return "meme", True
    return "photo", False


def _labels(facts: ImageFacts, kind: str) -> list[str]:
    labels = [kind]
    shape = "square" if abs(facts.width - facts.height) <= 0.1 * max(facts.width, facts.height) else (
        "landscape" if facts.width > facts.height else "portrait")
    labels.append(shape)
    labels.append("bright" if facts.brightness >= 170 else "dark" if facts.brightness < 85 else "midtone")
    labels.append("colorful" if facts.colorfulness >= 60 else "muted" if facts.colorfulness >= 20 else "monochrome")
    if facts.ocr:
        labels.append("text")
        lang = facts.ocr.get("lang") or ""
        labels.extend(label for code, label in (("ru", "russian-text"), ("en", "english-text")) if code in lang)
        words = [w.lower() for w in re.findall(r"\w{4,}", facts.ocr["text"]) if not w.isdigit()]
        labels.extend(word for word, _ in Counter(words).most_common(5))
    return labels


def _describe(facts: ImageFacts, kind: str) -> str:
    tone = "bright" if facts.brightness >= 170 else "dark" if facts.brightness < 85 else "mid-tone"
    text = f' with text "{" ".join(facts.ocr["text"].split()[:12])}"' if facts.ocr else " without readable text"
    return f"{kind.capitalize()}, {facts.width}x{facts.height}, {tone}{text}"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class LocalVision:
    """Offline analysis: OCR, hash, statistics, heuristics."""

    name = "local"

    def __init__(self) -> None:
        self.model = "heuristic-1+tesseract" if tesseract_available() else "heuristic-1"
        if not tesseract_available():
            log.warning("tesseract is not installed: local vision runs without OCR "
                        "(apt-get install tesseract-ocr tesseract-ocr-rus tesseract-ocr-eng)")

    @property
    def key(self) -> str:
        return f"{self.name}:{self.model}:{SCHEMA_VERSION}"

    def facts(self, data: bytes) -> ImageFacts:
        return image_facts(decode_image(data))

    def result_from(self, facts: ImageFacts) -> dict:
        kind, is_meme = guess_kind(facts)
        return {
            "kind": kind, "description": _describe(facts, kind), "labels": _labels(facts, kind), "ocr": facts.ocr,
            "is_meme": is_meme, "phash": facts.phash, "width": facts.width, "height": facts.height,
            "provider": self.name, "model": self.model, "analyzed_at": _now(),
            "stats": {"brightness": facts.brightness, "contrast": facts.contrast,
                      "colorfulness": facts.colorfulness, "edge_density": facts.edge_density},
        }

    def analyse(self, data: bytes) -> dict:
        return self.result_from(self.facts(data))


def first_json_object(content: str) -> Any:
    """The first complete JSON object in a model's answer: bare, in a code fence, or after prose.

    Raises ``json.JSONDecodeError`` when there is none (a cut-off answer, plain prose)."""
    start = content.find("{")
    if start < 0:
        raise json.JSONDecodeError("no JSON object in the answer", content, 0)
    answer, _ = json.JSONDecoder().raw_decode(content, start)
    return answer


def _retry_after(response: Any) -> float | None:
    """Seconds a 429/503 asks to wait (``Retry-After`` in seconds), else None."""
    if response.status_code not in (429, 503):
        return None
    try:
        return max(0.0, float(response.headers.get("Retry-After", "")))
    except ValueError:
        return None


def validate_item(answer: Any) -> dict:
    """Check a model's JSON answer against the item schema; return the fields we take from it."""
    if not isinstance(answer, dict):
        raise ValueError("answer is not a JSON object")
    kind = answer.get("kind")
    if kind not in KINDS:
        raise ValueError(f"kind {kind!r} is not one of {KINDS}")
    description = answer.get("description")
    if not isinstance(description, str) or not description.strip():
        raise ValueError("description must be a non-empty string")
    labels = answer.get("labels", [])
    if not isinstance(labels, list) or not all(isinstance(label, str) for label in labels):
        raise ValueError("labels must be a list of strings")
    is_meme = answer.get("is_meme", kind == "meme")
    if not isinstance(is_meme, bool):
        raise ValueError("is_meme must be a boolean")
    return {"kind": kind, "description": description.strip()[:500],
            "labels": [label.strip().lower() for label in labels if label.strip()][:20], "is_meme": is_meme}


_PROMPT = (
    "Describe this image for a search index. Answer with one JSON object only: "
    '{"kind": one of ' + json.dumps(list(KINDS)) + ', "description": "one sentence, at most 160 characters", '
    '"labels": ["up to 20 short lower-case labels"], "is_meme": true or false}.'
)


class OpenAIVision:
    """An OpenAI-compatible vision endpoint, falling back to ``LocalVision`` on any failure.

    Real VLM servers (vLLM, Ollama, hosted APIs) answer in ways the schema must survive: JSON in
    a code fence or after a sentence of prose is taken (the first complete object), a cut-off
    or invalid answer falls back to the local result with the reason. A 429 or 503 with
    ``Retry-After`` up to ``RETRY_AFTER_CAP_SECONDS`` is waited for and asked again, at most
    ``RATE_LIMIT_RETRIES`` times; a longer wait, or more, falls back rather than stall the task.
    """

    name = "openai"
    RATE_LIMIT_RETRIES = 2
    RETRY_AFTER_CAP_SECONDS = 30.0

    def __init__(self, base_url: str, model: str, api_key: str | None = None, timeout: float = 30.0,
                 local: LocalVision | None = None):
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.api_key = api_key
        self.timeout = timeout
        self.local = local or LocalVision()

    @property
    def key(self) -> str:
        return f"{self.name}:{self.model}:{SCHEMA_VERSION}"

    def _ask(self, data: bytes) -> dict:
        import httpx

        image = Image.open(io.BytesIO(data))
        mime = Image.MIME.get(image.format or "", "image/jpeg")
        body = {
            "model": self.model,
            "response_format": {"type": "json_object"},
            "messages": [{"role": "user", "content": [
                {"type": "text", "text": _PROMPT},
                {"type": "image_url",
                 "image_url": {"url": f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"}},
            ]}],
        }
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        for attempt in range(self.RATE_LIMIT_RETRIES + 1):
            response = httpx.post(f"{self.base_url}/chat/completions", json=body, headers=headers,
                                  timeout=self.timeout)
            wait = _retry_after(response)
            if wait is None or attempt == self.RATE_LIMIT_RETRIES or wait > self.RETRY_AFTER_CAP_SECONDS:
                break
            log.info("vision endpoint %s answered %d; asking again in %.1f s", self.base_url, response.status_code,
                     wait)
            time.sleep(wait)
        response.raise_for_status()
        return validate_item(first_json_object(response.json()["choices"][0]["message"]["content"]))

    def analyse(self, data: bytes) -> dict:
        facts = self.local.facts(data)  # decoding limits and the hash/OCR we always keep
        local = self.local.result_from(facts)
        try:
            answer = self._ask(data)
        except Exception as exc:  # noqa: BLE001 - any failure of the remote model falls back to local
            reason = f"{type(exc).__name__}: {str(exc)[:200]}"
            log.warning("vision endpoint %s failed (%s); using the local result", self.base_url, reason)
            return {**local, "fallback_reason": reason}
        return {**local, **answer, "provider": self.name, "model": self.model, "analyzed_at": _now()}
