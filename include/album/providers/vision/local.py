"""The local provider (default, offline): measurements and documented rules, no model.

``LocalVision`` takes ``ImageFacts`` (OCR, hash, statistics, faces) and from them decides
kind, meme flag, labels and description by the rules of ``guess_kind``. No scene model ships
in a registry package, so what a photo shows comes from the OpenAI-compatible provider.
Quality: ``python -m devtools vision`` (docs/benchmarks.md).
"""

from __future__ import annotations

import logging
import re
from collections import Counter

from include.album.providers.stopwords import STOP_WORDS
from include.album.providers.vision.facts import ImageFacts, faces_available, image_facts
from include.album.providers.vision.images import decode_image
from include.album.providers.vision.schema import SCHEMA_VERSION, analyzed_at
from include.album.providers.vision.tesseract import KEYWORD_CONFIDENCE, Reading, tesseract_available

log = logging.getLogger(__name__)

CANVAS_FLAT = 0.65  # drawn UI and charts measure >= 0.74 on the vision set, photos <= 0.54
MEME_BAND = 0.3
HEURISTICS_VERSION = 3  # in the cache key: results of an older version are analysed again
# Kinds that are no label: "photo" is what any picture is when no rule says more, "other" that
# no rule could tell. Either would sit on nearly every album and say nothing there.
UNLABELLED_KINDS = frozenset({"photo", "other"})


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
    """What the image shows, as far as offline tools can tell: a kind that sets it apart (meme,
    screenshot, document, infographic), faces, main colours, text words."""
    labels = [] if kind in UNLABELLED_KINDS else [kind]
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
            "provider": self.name, "model": self.model, "analyzed_at": analyzed_at(),
            "stats": {"brightness": facts.brightness, "contrast": facts.contrast,
                      "colorfulness": facts.colorfulness, "edge_density": facts.edge_density,
                      "flat": facts.flat, "saturated": facts.saturated},
        }

    def analyse(self, data: bytes) -> dict:
        return self.result_from(self.facts(data))
