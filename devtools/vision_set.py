"""The vision quality set: real photos from registry packages plus generated Telegram-like images.

``tests/data/vision_truth.json`` lists every image with its true kind, text and tags. A
``source`` of ``skimage:<file>`` is one of scikit-image's bundled sample images,
``mate:<file>`` one of Debian's mate-backgrounds nature photographs; any other source names a
renderer here (meme, tweet, chat, bar chart, scan, a photo with a small street sign) that
draws the image with Debian's DejaVu and Liberation fonts and returns the text it drew, which
is the OCR truth. Images are saved as Telegram serves them: JPEG, at most 1280 px a side.
"""

from __future__ import annotations

import json
import random
import textwrap
from collections.abc import Callable
from io import BytesIO
from pathlib import Path

from PIL import Image, ImageChops, ImageDraw, ImageFilter, ImageFont

TRUTH = Path(__file__).resolve().parents[1] / "tests" / "data" / "vision_truth.json"
FONTS = Path("/usr/share/fonts/truetype")
MATE_PHOTOS = Path("/usr/share/backgrounds/mate/nature")
TELEGRAM_SIDE = 1280
JPEG_QUALITY = 85


class MissingSource(RuntimeError):
    """An image's package is not installed; the message says which one to install."""


def truth() -> dict:
    return json.loads(TRUTH.read_text(encoding="utf-8"))


def font(name: str, size: int) -> ImageFont.FreeTypeFont:
    family = "liberation" if name.startswith("Liberation") else "dejavu"
    path = FONTS / family / f"{name}.ttf"
    if not path.exists():
        raise MissingSource(f"font {path} is missing: apt-get install fonts-dejavu-core fonts-liberation")
    return ImageFont.truetype(str(path), size)


def package_photo(source: str) -> Image.Image:
    """``skimage:<file>`` or ``mate:<file>`` as an RGB image."""
    package, _, name = source.partition(":")
    if package == "skimage":
        try:
            import skimage.data
        except ImportError as exc:
            raise MissingSource("scikit-image is not installed: uv pip install -r requirements-dev.txt") from exc
        path = Path(skimage.data.__file__).parent / name
    elif package == "mate":
        path = MATE_PHOTOS / name
        if not path.exists():
            raise MissingSource(f"{path} is missing: apt-get install mate-backgrounds")
    else:
        raise ValueError(f"unknown photo source {source!r}")
    return Image.open(path).convert("RGB")


def _telegram_size(image: Image.Image) -> Image.Image:
    image = image.copy()
    image.thumbnail((TELEGRAM_SIDE, TELEGRAM_SIDE), Image.Resampling.LANCZOS)
    return image


def sign(spec: dict) -> tuple[Image.Image, str]:
    """A photo with a small blue street sign, its white lettering ``text_px`` pixels high."""
    image = _telegram_size(package_photo(spec["background"]))
    draw = ImageDraw.Draw(image)
    face = font("DejaVuSans-Bold", spec["text_px"])
    left, top, right, bottom = draw.textbbox((0, 0), spec["sign"], font=face)
    x, y = int(image.width * 0.62), int(image.height * 0.55)
    pad = 6
    draw.rectangle((x - pad, y - pad, x + right - left + pad, y + bottom - top + pad), fill=(25, 70, 160),
                   outline=(240, 240, 240), width=2)
    draw.text((x - left, y - top), spec["sign"], font=face, fill=(250, 250, 250))
    return image, spec["sign"]


def meme(spec: dict) -> tuple[Image.Image, str]:
    """The classic meme: a photo with white, black-outlined capitals at the top and bottom."""
    image = package_photo(spec["background"]).resize((800, 600), Image.Resampling.LANCZOS)
    draw = ImageDraw.Draw(image)
    for line, at_top in ((spec["top"], True), (spec["bottom"], False)):
        size = 64
        while size > 24:
            face = font("DejaVuSans-Bold", size)
            left, top, right, bottom = draw.textbbox((0, 0), line, font=face, stroke_width=3)
            if right - left <= image.width - 30:
                break
            size -= 4
        x = (image.width - (right - left)) // 2 - left
        y = 18 - top if at_top else image.height - 24 - (bottom - top) - top
        draw.text((x, y), line, font=face, fill="white", stroke_width=3, stroke_fill="black")
    return image, f"{spec['top']}\n{spec['bottom']}"


def tweet(spec: dict) -> tuple[Image.Image, str]:
    """A social network post screenshot, light or dark theme."""
    background, ink, grey = ((21, 32, 43), (240, 240, 240), (139, 152, 165)) if spec["dark"] else (
        (255, 255, 255), (15, 20, 25), (83, 100, 113))
    body = textwrap.wrap(spec["body"], 42)
    image = Image.new("RGB", (1080, 260 + 52 * len(body)), background)
    draw = ImageDraw.Draw(image)
    draw.ellipse((40, 40, 140, 140), fill=(29, 155, 240))
    draw.text((165, 50), spec["author"], font=font("DejaVuSans-Bold", 34), fill=ink)
    draw.text((165, 95), spec["handle"], font=font("DejaVuSans", 30), fill=grey)
    y = 170
    for line in body:
        draw.text((40, y), line, font=font("DejaVuSans", 36), fill=ink)
        y += 52
    draw.text((40, y + 20), spec["when"], font=font("DejaVuSans", 28), fill=grey)
    return image, "\n".join([spec["author"], spec["handle"], *body, spec["when"]])


def chat(spec: dict) -> tuple[Image.Image, str]:
    """A messenger chat screenshot: incoming bubbles left, outgoing right."""
    image = Image.new("RGB", (720, 1280), (208, 221, 198))
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, 720, 110), fill=(81, 125, 162))
    draw.text((120, 35), "Мария", font=font("DejaVuSans-Bold", 36), fill="white")
    face = font("DejaVuSans", 30)
    y, lines = 150, ["Мария"]
    for direction, text in spec["messages"]:
        wrapped = textwrap.wrap(text, 26)
        width = max(draw.textlength(line, font=face) for line in wrapped) + 40
        height = 44 * len(wrapped) + 30
        x = 24 if direction == "in" else 720 - 24 - width
        draw.rounded_rectangle((x, y, x + width, y + height), 22,
                               fill=(255, 255, 255) if direction == "in" else (225, 255, 199))
        for n, line in enumerate(wrapped):
            draw.text((x + 20, y + 14 + 44 * n), line, font=face, fill=(20, 20, 20))
        lines.extend(wrapped)
        y += height + 28
    return image, "\n".join(lines)


def bar_chart(spec: dict) -> tuple[Image.Image, str]:
    """A bar chart with a title, value labels and category labels."""
    image = Image.new("RGB", (1000, 700), "white")
    draw = ImageDraw.Draw(image)
    draw.text((50, 30), spec["title"], font=font("DejaVuSans-Bold", 40), fill=(30, 30, 30))
    bars, top_value = spec["bars"], max(value for _, value in spec["bars"])
    base, height, slot = 600, 420, 900 // len(spec["bars"])
    for n in range(5):
        y = base - height * n // 4
        draw.line((50, y, 950, y), fill=(220, 220, 220), width=2)
    palette = [(66, 133, 244), (219, 68, 55), (244, 180, 0), (15, 157, 88), (171, 71, 188), (0, 172, 193)]
    small, label = font("DejaVuSans", 28), font("DejaVuSans-Bold", 30)
    for n, (name, value) in enumerate(bars):
        x = 50 + slot * n + slot // 5
        y = base - height * value // top_value
        draw.rectangle((x, y, x + slot * 3 // 5, base), fill=palette[n % len(palette)])
        draw.text((x + 10, y - 40), str(value), font=label, fill=(30, 30, 30))
        draw.text((x + 4, base + 15), name, font=small, fill=(60, 60, 60))
    return image, "\n".join([spec["title"], " ".join(str(v) for _, v in bars), " ".join(n for n, _ in bars)])


def scan(spec: dict) -> tuple[Image.Image, str]:
    """A printed notice scanned a little crooked: off-white paper, grain, a slight blur."""
    rng = random.Random(spec["name"])
    image = Image.new("L", (1240, 1754), 238)
    draw = ImageDraw.Draw(image)
    title = font("LiberationSerif-Bold", 64)
    left, _, right, _ = draw.textbbox((0, 0), spec["title"], font=title)
    draw.text(((1240 - (right - left)) // 2, 160), spec["title"], font=title, fill=30)
    body = font("LiberationSerif-Regular", 40)
    for n, line in enumerate(spec["body"]):
        draw.text((130, 320 + 62 * n), line, font=body, fill=40)
    lighting = Image.linear_gradient("L").resize(image.size).rotate(rng.choice((90, 180, 270)))
    image = ImageChops.multiply(image, Image.eval(lighting, lambda v: 215 + v * 40 // 255))  # uneven lamp
    image = Image.blend(image, Image.effect_noise(image.size, 40), 0.12)  # paper grain and sensor noise
    image = image.rotate(0.7, resample=Image.Resampling.BICUBIC, fillcolor=225)
    return image.filter(ImageFilter.GaussianBlur(0.6)).convert("RGB"), "\n".join([spec["title"], *spec["body"]])


RENDERERS: dict[str, Callable[[dict], tuple[Image.Image, str]]] = {
    "sign": sign, "meme": meme, "tweet": tweet, "chat": chat, "bar_chart": bar_chart, "scan": scan}


def render(spec: dict) -> tuple[Image.Image, str | None]:
    """An image of the set and its true text (None: no text on it)."""
    if spec["source"] in RENDERERS:
        image, text = RENDERERS[spec["source"]](spec)
        return _telegram_size(image), text
    photo = package_photo(spec["source"])
    return (photo if spec.get("text") else _telegram_size(photo)), spec.get("text")


def jpeg(image: Image.Image) -> bytes:
    out = BytesIO()
    image.save(out, "JPEG", quality=JPEG_QUALITY)
    return out.getvalue()


def build(out_dir: Path | None = None) -> list[dict]:
    """Every image of the set as Telegram would serve it: its spec plus ``data`` (JPEG bytes) and
    ``text`` (the truth); written to ``out_dir`` as <name>.jpg when given, to look at."""
    images = []
    for spec in truth()["images"]:
        image, text = render(spec)
        data = jpeg(image)
        if out_dir is not None:
            out_dir.mkdir(parents=True, exist_ok=True)
            (out_dir / f"{spec['name']}.jpg").write_bytes(data)
        images.append({**spec, "text": text, "data": data})
    return images
