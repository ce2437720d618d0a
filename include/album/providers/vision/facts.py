"""What the local analysis measures of an image: its hash, OCR, light, colours, edges and faces.

Both providers keep these: the OpenAI-compatible one answers what the image shows, the hash
and OCR are always the local ones.
"""

from __future__ import annotations

import functools
from collections import Counter
from dataclasses import dataclass
from typing import Any

from PIL import Image, ImageChops, ImageFilter, ImageStat

from include.album.providers.vision.tesseract import Reading, ocr, ocr_field

PALETTE_SHARE = 0.15
HUE_SHARE = 0.01
FACE_MIN_PX, FACE_MIN_NEIGHBOURS = 48, 8


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


def phash(image: Image.Image) -> str:
    import imagehash

    return str(imagehash.phash(image))


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
