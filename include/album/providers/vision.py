"""Per-image vision analysis (item schema v1): one interface, two providers.

* ``LocalVision`` (default, offline): Tesseract OCR (rus+eng, several passes, the best kept),
  a perceptual hash, image statistics, frontal faces (scikit-image's bundled cascade), and
  from them documented rules for kind, meme flag, labels and description. No scene model
  ships in a registry package, so what a photo shows comes from the OpenAI-compatible
  provider. Quality: ``python -m devtools vision`` (docs/benchmarks.md).
* ``OpenAIVision``: any OpenAI-compatible ``/chat/completions`` endpoint with vision
  (OpenAI, vLLM, Ollama). Its JSON answer is validated against the item schema; the local
  hash and OCR are always kept; on any error, timeout or invalid answer it falls back to
  the local result and says why.

Decoding is bounded (bytes, pixels, OCR time): a hostile image yields a terminal skip with a
reason, never a hung or crashed task.
"""

from __future__ import annotations

import base64
import functools
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

from PIL import Image, ImageChops, ImageFilter, ImageOps, ImageStat, UnidentifiedImageError

from include.album.providers.stopwords import STOP_WORDS

log = logging.getLogger(__name__)

SCHEMA_VERSION = "v1"
KINDS = ("photo", "meme", "screenshot", "document", "infographic", "other")
MAX_IMAGE_BYTES = 20 * 1024 * 1024
MAX_IMAGE_PIXELS = 40_000_000
OCR_TIMEOUT_SECONDS = 20
OCR_MIN_SIDE = 24
OCR_MIN_CONFIDENCE = 55
OCR_SURE_CONFIDENCE = 70  # a reading needs one 3+-letter word this sure, or it is texture
KEYWORD_CONFIDENCE = 85
OCR_LANGUAGE_ORDERS = ("eng+rus", "rus+eng")
SAUVOLA = "-c thresholding_method=2"
OCR_UPSCALE_BELOW, OCR_UPSCALE_TO, OCR_UPSCALE_MIN, OCR_UPSCALE_MAX = 750, 1200, 1.6, 3.0
LIGHT_TEXT_LEVEL, LIGHT_TEXT_TINT, LIGHT_TEXT_SHARE = 200, 40, (0.0005, 0.3)
DARK_THEME_LEVEL = 100
CANVAS_FLAT = 0.65  # drawn UI and charts measure >= 0.74 on the vision set, photos <= 0.54
MEME_BAND = 0.3
PALETTE_SHARE = 0.15
HUE_SHARE = 0.01
FACE_MIN_PX, FACE_MIN_NEIGHBOURS = 48, 8
HEURISTICS_VERSION = 2


class UnusableImage(Exception):
    """The bytes cannot be analysed as an image: a terminal skip, cached like a result."""

    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Word:
    """One word Tesseract is sure enough of, and where its line sits (0 top .. 1 bottom of the image)."""

    text: str
    confidence: float
    line: tuple[int, int, int]
    middle: float


@dataclass(frozen=True)
class Reading:
    """What one OCR pass read, after the junk filter."""

    words: tuple[Word, ...]

    @property
    def text(self) -> str:
        lines: dict[tuple[int, int, int], list[str]] = {}
        for word in self.words:
            lines.setdefault(word.line, []).append(word.text)
        return "\n".join(" ".join(words) for _, words in sorted(lines.items()))

    @property
    def confidence(self) -> float:
        return sum(w.confidence for w in self.words) / len(self.words) if self.words else 0.0

    @property
    def score(self) -> float:
        """Characters read, weighted by confidence: more sure text beats less, or less sure."""
        return sum(len(w.text) * w.confidence for w in self.words) / 100


NO_READING = Reading(())


@dataclass(frozen=True)
class ImageFacts:
    """What the local analysis measures; the OpenAI provider keeps these too."""

    width: int
    height: int
    phash: str
    reading: Reading
    ocr: dict | None  # {"text", "lang", "engine", "confidence"} or None
    brightness: float  # 0..255 mean luminance
    contrast: float  # luminance standard deviation
    colorfulness: float  # mean saturation, 0 for greyscale
    edge_density: float  # share of strong edges, high for text and UI
    flat: float  # share of pixels in perfectly even areas: high on a drawn canvas (UI, chart), low on a photo
    saturated: float  # share of strongly coloured pixels
    palette: tuple[str, ...]  # the colours that cover most of the image, most first
    hues: int  # colours (not greys) that each cover a visible part of the image
    faces: int | None  # frontal faces found; None when scikit-image is not installed


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
_LETTERS = re.compile(r"[^\W\d_]")


def text_language(text: str) -> str | None:
    cyrillic, latin = len(_CYRILLIC.findall(text)), len(_LATIN.findall(text))
    if not cyrillic and not latin:
        return None
    if cyrillic and latin and min(cyrillic, latin) / max(cyrillic, latin) > 0.2:
        return "ru+en"
    return "ru" if cyrillic > latin else "en"


def tesseract_available() -> bool:
    return shutil.which("tesseract") is not None


def _read(image: Image.Image, languages: str, config: str = "") -> Reading:
    """One Tesseract pass: the words at ``OCR_MIN_CONFIDENCE`` or more, junk removed."""
    import pytesseract

    data = pytesseract.image_to_data(image, lang=languages, config=config, timeout=OCR_TIMEOUT_SECONDS,
                                     output_type=pytesseract.Output.DICT)
    words = []
    for i, text in enumerate(data["text"]):
        text, confidence = text.strip(), float(data["conf"][i])
        if text and confidence >= OCR_MIN_CONFIDENCE and re.search(r"\w", text):
            line = (data["block_num"][i], data["par_num"][i], data["line_num"][i])
            middle = (data["top"][i] + data["height"][i] / 2) / image.height
            words.append(Word(text, confidence, line, round(middle, 3)))
    return Reading(_without_junk(words))


def _without_junk(words: list[Word]) -> tuple[Word, ...]:
    """What Tesseract finds in a photo's texture is short and unsure: a line is kept when it holds
    a word of three letters or more read at ``OCR_SURE_CONFIDENCE``, or when it is all read at
    ``KEYWORD_CONFIDENCE`` and longer than one character (a row of numbers on a chart)."""
    by_line: dict[tuple[int, int, int], list[Word]] = {}
    for word in words:
        by_line.setdefault(word.line, []).append(word)
    kept = []
    for line in by_line.values():
        sure_word = any(len(_LETTERS.findall(w.text)) >= 3 and w.confidence >= OCR_SURE_CONFIDENCE for w in line)
        all_sure = min(w.confidence for w in line) >= KEYWORD_CONFIDENCE and sum(
            len(re.findall(r"[^\W_]", w.text)) for w in line) > 1
        if sure_word or all_sure:
            kept.extend(line)
    return tuple(kept)


def _upscaled(image: Image.Image) -> Image.Image:
    """Small images (a sign, a forwarded thumbnail) are enlarged: Tesseract reads letters ~20-40 px high."""
    longest = max(image.size)
    if longest > OCR_UPSCALE_BELOW:
        return image
    factor = min(OCR_UPSCALE_MAX, max(OCR_UPSCALE_MIN, OCR_UPSCALE_TO / longest))
    return image.resize((round(image.width * factor), round(image.height * factor)), Image.Resampling.LANCZOS)


def light_text_mask(image: Image.Image) -> Image.Image | None:
    """Near-white, untinted pixels as black on white: meme captions (white with a black outline),
    white lettering on signs and dark themes. None when such pixels are too few or are the background."""
    red, green, blue = image.split()
    low = ImageChops.darker(ImageChops.darker(red, green), blue)
    high = ImageChops.lighter(ImageChops.lighter(red, green), blue)
    light = low.point(lambda v: 255 if v >= LIGHT_TEXT_LEVEL else 0)
    untinted = ImageChops.subtract(high, low).point(lambda v: 255 if v <= LIGHT_TEXT_TINT else 0)
    mask = ImageChops.multiply(light, untinted)
    share = mask.histogram()[255] / (image.width * image.height)
    if not LIGHT_TEXT_SHARE[0] <= share <= LIGHT_TEXT_SHARE[1]:
        return None
    return ImageOps.invert(mask)


def read_text(image: Image.Image) -> Reading:
    """The best of several Tesseract passes (by ``Reading.score``).

    The grey image (inverted when mostly dark) is read with Otsu's global threshold (large,
    even text) and with Sauvola's local one (uneven lighting, small text); images with light
    lettering are also read from ``light_text_mask``. Capital letters shared by both alphabets
    (МОСКВА / MOCKBA) are read as whichever language Tesseract tries first, so the best image is
    read in both orders too.
    """
    image = _upscaled(image)
    grey = image.convert("L")
    if ImageStat.Stat(grey).mean[0] < DARK_THEME_LEVEL:  # light on dark: Tesseract reads dark on light, faster
        grey = ImageOps.invert(grey)
    candidates = [(grey, ""), (grey, SAUVOLA)]
    if (mask := light_text_mask(image)) is not None:
        candidates.append((mask, ""))
    first, *others = OCR_LANGUAGE_ORDERS
    readings = [(_read(picture, first, config), picture, config) for picture, config in candidates]
    best, picture, config = max(readings, key=lambda r: r[0].score)
    if not best.words:
        return NO_READING
    return max([best, *(_read(picture, languages, config) for languages in others)], key=lambda r: r.score)


def ocr(image: Image.Image) -> Reading:
    """Tesseract (Russian + English) within ``OCR_TIMEOUT_SECONDS`` a pass; nothing when the image
    is too small, Tesseract is not installed or it gave up."""
    if min(image.size) < OCR_MIN_SIDE or not tesseract_available():
        return NO_READING
    try:
        return read_text(image.convert("RGB"))
    except RuntimeError as exc:  # pytesseract's timeout
        log.warning("OCR gave up after %ss: %s", OCR_TIMEOUT_SECONDS, exc)
        return NO_READING


def ocr_field(reading: Reading) -> dict | None:
    """The item's ``ocr`` field: text, language, engine, confidence; None when nothing was read."""
    if not reading.words:
        return None
    import pytesseract

    version = str(pytesseract.get_tesseract_version()).split()[0]
    return {"text": reading.text, "lang": text_language(reading.text), "engine": f"tesseract-{version}",
            "confidence": round(reading.confidence, 1)}


@functools.cache
def _face_cascade() -> Any:
    """scikit-image's bundled LBP frontal-face cascade (OpenCV's), or None without scikit-image."""
    try:
        from skimage.data import lbp_frontal_face_cascade_filename
        from skimage.feature import Cascade
    except ImportError:
        return None
    return Cascade(lbp_frontal_face_cascade_filename())


def faces_available() -> bool:
    return _face_cascade() is not None


def count_faces(image: Image.Image) -> int | None:
    """Frontal faces at least ``FACE_MIN_PX`` on a 640-px copy; strict (``FACE_MIN_NEIGHBOURS``)
    because a false ``person`` on a flower costs more than a missed face."""
    cascade = _face_cascade()
    if cascade is None:
        return None
    import numpy

    small = image.convert("L")
    small.thumbnail((640, 640))
    if min(small.size) < FACE_MIN_PX:
        return 0
    found = cascade.detect_multi_scale(img=numpy.asarray(small, dtype=numpy.float32) / 255, scale_factor=1.2,
                                       step_ratio=1, min_size=(FACE_MIN_PX, FACE_MIN_PX),
                                       max_size=(min(small.size),) * 2, min_neighbor_number=FACE_MIN_NEIGHBOURS)
    return len(found)


# Hue ranges (degrees) and their names; greys by lightness. Saturation/value on PIL's 0..255.
_HUES = ((15, "red"), (40, "orange"), (70, "yellow"), (165, "green"), (255, "blue"), (290, "purple"),
         (335, "pink"), (360, "red"))


def colour_name(hue: int, saturation: int, value: int) -> str:
    if value < 50:
        return "black"
    if saturation < 50:
        return "white" if value >= 200 else "grey"
    degrees = hue * 360 / 255
    name = next(name for limit, name in _HUES if degrees < limit)
    if name in ("red", "orange") and value < 150:
        return "brown"
    return name


_GREYS = frozenset({"black", "white", "grey"})


def colour_shares(image: Image.Image) -> Counter:
    """Each colour name's share of the image (on a 64-px copy)."""
    small = image.copy()
    small.thumbnail((64, 64))
    pixels = list(zip(*(channel.getdata() for channel in small.convert("HSV").split()), strict=True))
    return Counter({name: count / len(pixels) for name, count in Counter(colour_name(*p) for p in pixels).items()})


def palette(shares: Counter) -> tuple[str, ...]:
    """The colour names that each cover at least ``PALETTE_SHARE`` of the image, most first."""
    return tuple(name for name, share in shares.most_common(3) if share >= PALETTE_SHARE)


def hues(shares: Counter) -> int:
    """How many colours (not greys) each cover at least ``HUE_SHARE``: a chart's bars are several,
    a coloured background or an avatar one."""
    return sum(1 for name, share in shares.items() if name not in _GREYS and share >= HUE_SHARE)


def image_facts(image: Image.Image) -> ImageFacts:
    width, height = image.size
    small = image.copy()
    small.thumbnail((256, 256))
    grey = small.convert("L")
    stat = ImageStat.Stat(grey)
    hsv = small.convert("HSV")
    saturation, value = hsv.getchannel("S"), hsv.getchannel("V")
    strongly = ImageChops.multiply(saturation.point(lambda v: 255 if v >= 100 else 0),
                                   value.point(lambda v: 255 if v >= 60 else 0))
    pixels = grey.width * grey.height
    edges = grey.filter(ImageFilter.FIND_EDGES).histogram()
    spread = ImageChops.subtract(grey.filter(ImageFilter.MaxFilter(3)), grey.filter(ImageFilter.MinFilter(3)))
    reading = ocr(image)
    shares = colour_shares(image)
    return ImageFacts(
        width=width, height=height, phash=phash(image), reading=reading, ocr=ocr_field(reading),
        brightness=round(stat.mean[0], 1), contrast=round(stat.stddev[0], 1),
        colorfulness=round(ImageStat.Stat(saturation).mean[0], 1),
        edge_density=round(sum(edges[64:]) / pixels, 4),
        flat=round(sum(spread.histogram()[:3]) / pixels, 4),
        saturated=round(strongly.histogram()[255] / pixels, 4),
        palette=palette(shares), hues=hues(shares), faces=count_faces(image),
    )


def _is_number(word: str) -> bool:
    return bool(re.fullmatch(r"[\d.,:%$€₽+-]*\d[\d.,:%$€₽+-]*", word))


def guess_kind(facts: ImageFacts) -> tuple[str, bool]:
    """Heuristic kind and meme flag from measurements: documented rules, tried in this order.

    1. too small to tell: ``other``;
    2. a photo with its words in caption bands (the top or bottom ``MEME_BAND``): ``meme``;
    3. colourless, light, with a page of words: ``document`` (a scan, a printed notice);
    4. a drawn canvas (``flat`` at least ``CANVAS_FLAT``): with several numbers or three colours
       or more ``infographic`` (a chart), with lines of words ``screenshot``, else ``other``;
    5. many words over sharp edges: ``screenshot``; anything else: ``photo``.
    """
    words = facts.reading.words
    if min(facts.width, facts.height) < 32:
        return "other", False
    canvas = facts.flat >= CANVAS_FLAT
    banded = [w for w in words if w.middle <= MEME_BAND or w.middle >= 1 - MEME_BAND]
    if not canvas and len(banded) >= 2 and len(banded) >= 0.7 * len(words) and len(words) <= 30:
        return "meme", True
    if len(words) >= 20 and facts.saturated < 0.005 and facts.brightness >= 140:
        return "document", False
    if canvas and words:
        numbers = sum(_is_number(w.text) for w in words)
        if (numbers >= 3 and numbers >= 0.2 * len(words)) or facts.hues >= 3:
            return "infographic", False
        return ("screenshot" if len(words) >= 8 else "other"), False
    if canvas:
        return "other", False
    if len(words) >= 8 and facts.edge_density > 0.08:
        return "screenshot", False
    return "photo", False


def keywords(reading: Reading, limit: int = 5) -> list[str]:
    """The most frequent sure words of four letters or more, stop-words and numbers left out."""
    words = [w.text.lower().strip(".,:;!?«»\"'()[]") for w in reading.words if w.confidence >= KEYWORD_CONFIDENCE]
    words = [w for w in words if len(w) >= 4 and w.isalpha() and w not in STOP_WORDS]
    return [word for word, _ in Counter(words).most_common(limit)]


def appearance(facts: ImageFacts) -> dict:
    """How the image looks, kept apart from labels (what it shows)."""
    side = max(facts.width, facts.height)
    orientation = "square" if abs(facts.width - facts.height) <= 0.1 * side else (
        "landscape" if facts.width > facts.height else "portrait")
    tone = "bright" if facts.brightness >= 170 else "dark" if facts.brightness < 85 else "mid-tone"
    return {"orientation": orientation, "tone": tone, "palette": list(facts.palette),
            "black_and_white": facts.colorfulness < 8}


def _labels(facts: ImageFacts, kind: str) -> list[str]:
    """What the image shows, as far as offline tools can tell: kind, faces, main colours, text words."""
    labels = [kind]
    if facts.faces:
        labels.append("person")
    if kind in ("photo", "meme"):  # a page or a screen is black and white by nature, not content
        labels.append("black-and-white") if facts.colorfulness < 8 else labels.extend(
            name for name in facts.palette[:2] if name not in ("white", "grey", "black"))
    if facts.ocr:
        labels.append("text")
        lang = facts.ocr.get("lang") or ""
        labels.extend(label for code, label in (("ru", "russian-text"), ("en", "english-text")) if code in lang)
        labels.extend(keywords(facts.reading))
    return list(dict.fromkeys(labels))


def _describe(facts: ImageFacts, kind: str) -> str:
    look = appearance(facts)
    colours = "black and white" if look["black_and_white"] else " and ".join(look["palette"][:2]) or "mixed colours"
    people = {None: "", 0: ""}.get(facts.faces, f", {facts.faces} face{'s' if facts.faces > 1 else ''}")
    text = f', text "{" ".join(facts.ocr["text"].split()[:12])}"' if facts.ocr else ", no readable text"
    size = f"{look['orientation']} {facts.width}x{facts.height}"
    return f"{kind.capitalize()}, {size}, {look['tone']}, {colours}{people}{text}"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class LocalVision:
    """Offline analysis: OCR, hash, statistics, faces, heuristics."""

    name = "local"

    def __init__(self) -> None:
        self.model = f"heuristic-{HEURISTICS_VERSION}"
        if tesseract_available():
            self.model += "+tesseract"
        else:
            log.warning("tesseract is not installed: local vision runs without OCR "
                        "(apt-get install tesseract-ocr tesseract-ocr-rus tesseract-ocr-eng)")
        if faces_available():
            self.model += "+faces"

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
            "appearance": appearance(facts), "faces": facts.faces,
            "provider": self.name, "model": self.model, "analyzed_at": _now(),
            "stats": {"brightness": facts.brightness, "contrast": facts.contrast,
                      "colorfulness": facts.colorfulness, "edge_density": facts.edge_density,
                      "flat": facts.flat, "saturated": facts.saturated},
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
