"""OCR: the best of several Tesseract passes (Russian and English), bounded in time, junk removed.

An image is read grey with Otsu's threshold and with Sauvola's, and from its near-white
pixels when it has light lettering; small images are enlarged first. What Tesseract finds in
a photo's texture (short, unsure words) is dropped line by line.
"""

from __future__ import annotations

import logging
import re
import shutil
from dataclasses import dataclass

from PIL import Image, ImageChops, ImageOps, ImageStat

log = logging.getLogger(__name__)

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
