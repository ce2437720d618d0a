"""Per-image vision analysis (item schema v1): one interface, two providers.

* ``LocalVision`` (default, offline, ``local.py``): Tesseract OCR (rus+eng, several passes,
  the best kept; ``tesseract.py``), a perceptual hash, image statistics and frontal faces
  (``facts.py``), and from them documented rules for kind, meme flag, labels and description.
  No scene model ships in a registry package, so what a photo shows comes from the
  OpenAI-compatible provider. Quality: ``python -m devtools vision`` (docs/benchmarks.md).
* ``OpenAIVision`` (``openai.py``): any OpenAI-compatible ``/chat/completions`` endpoint with
  vision (OpenAI, vLLM, Ollama). Its JSON answer is validated against the item schema; the
  local hash and OCR are always kept; on any error, timeout or invalid answer it falls back to
  the local result and says why.

Decoding is bounded (bytes, pixels, OCR time; ``images.py``): a hostile image yields a terminal
skip with a reason, never a hung or crashed task.
"""

from include.album.providers.vision.images import MAX_IMAGE_BYTES, UnusableImage, decode_image
from include.album.providers.vision.local import LocalVision
from include.album.providers.vision.openai import OpenAIVision, validate_item
from include.album.providers.vision.schema import VisionProvider
from include.album.providers.vision.tesseract import tesseract_available, text_language

__all__ = ["MAX_IMAGE_BYTES", "LocalVision", "OpenAIVision", "UnusableImage", "VisionProvider", "decode_image",
           "tesseract_available", "text_language", "validate_item"]
