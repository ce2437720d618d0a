"""Image bytes → a Pillow image, within limits: a hostile image is a terminal skip with a reason."""

from __future__ import annotations

import io
import warnings

from PIL import Image, UnidentifiedImageError

MAX_IMAGE_BYTES = 20 * 1024 * 1024
MAX_IMAGE_PIXELS = 40_000_000


class UnusableImage(Exception):
    """The bytes cannot be analysed as an image: a terminal skip, cached like a result."""

    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


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

