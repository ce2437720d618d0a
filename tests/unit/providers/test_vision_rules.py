"""The local provider's rules on real photos and generated Telegram-like images (devtools/vision_set).

Real photos come from registry packages (scikit-image's sample data, Debian's mate-backgrounds);
memes, screenshots, charts, scans and signs are drawn with Debian's fonts. Quality figures are
the benchmark's (``python -m devtools vision``); these tests pin each rule's behaviour.
"""

import pytest

from devtools import vision_set
from include.album.providers.vision import decode_image, tesseract_available
from include.album.providers.vision.local import keywords
from include.album.providers.vision.tesseract import OCR_LANGUAGE_ORDERS, Reading, Word, _read, light_text_mask

pytestmark = pytest.mark.skipif(not tesseract_available(), reason="tesseract-ocr is installed by .ci/run")

IMAGES = vision_set.truth()["images"]
REAL_PHOTOS = [spec for spec in IMAGES if ":" in spec["source"] and spec["kind"] == "photo"]
GENERATED = [spec for spec in IMAGES if spec["source"] in vision_set.RENDERERS]


def analysed(local, image) -> dict:
    return local.analyse(vision_set.jpeg(image))


@pytest.fixture(scope="module")
def local():
    from include.album.providers.vision import LocalVision

    return LocalVision()


def test_an_outlined_meme_caption_is_read_from_the_light_text_mask(local):
    image, _ = vision_set.meme({"background": "skimage:chelsea.png", "top": "КОГДА ПОНЕДЕЛЬНИК",
                                "bottom": "А ТЫ ЕЩЁ НЕ ВЫСПАЛСЯ"})
    grey = decode_image(vision_set.jpeg(image)).convert("L")
    assert not _read(grey, "rus+eng").words  # white letters in a black outline: the grey image reads nothing
    assert light_text_mask(decode_image(vision_set.jpeg(image))) is not None

    result = analysed(local, image)
    assert result["ocr"]["text"] == "КОГДА ПОНЕДЕЛЬНИК\nА ТЫ ЕЩЁ НЕ ВЫСПАЛСЯ"
    assert (result["kind"], result["is_meme"]) == ("meme", True)  # words in the caption bands of a photo
    assert {"понедельник", "выспался"} <= set(result["labels"])


def test_a_small_sign_is_read_after_upscaling(local):
    image, _ = vision_set.sign({"background": "skimage:rocket.jpg", "sign": "ул. Садовая", "text_px": 11})
    assert max(image.size) == 640
    decoded = decode_image(vision_set.jpeg(image))
    assert not any(_read(decoded.convert("L"), languages).words for languages in OCR_LANGUAGE_ORDERS)

    result = analysed(local, image)
    assert "садовая" in result["ocr"]["text"].lower()
    assert result["kind"] == "photo" and "садовая" in result["labels"]


@pytest.mark.parametrize("spec", REAL_PHOTOS, ids=lambda spec: spec["name"])
def test_real_photos_get_no_ocr_word_and_no_false_person(local, spec):
    result = analysed(local, vision_set.render(spec)[0])
    assert result["ocr"] is None and "text" not in result["labels"]
    assert result["kind"] == "photo"
    assert "person" not in result["labels"] or "person" in spec["tags"]


@pytest.mark.parametrize("spec", GENERATED, ids=lambda spec: spec["name"])
def test_generated_images_get_their_kind(local, spec):
    """Memes before screenshots, charts as infographics, tweets and chats as screenshots, scans as documents."""
    result = analysed(local, vision_set.render(spec)[0])
    assert result["kind"] == spec["kind"]
    assert result["is_meme"] == (spec["kind"] == "meme")


def test_a_chart_is_an_infographic(local):
    image, _ = vision_set.bar_chart({"title": "Урожай по годам", "bars": [["2023", 12], ["2024", 19], ["2025", 31]]})
    result = analysed(local, image)
    assert result["kind"] == "infographic" and "урожай" in result["labels"]


def test_labels_carry_content_and_appearance_is_apart(local):
    result = analysed(local, vision_set.render(next(s for s in IMAGES if s["name"] == "tweet_ru"))[0])
    assert result["appearance"] == {"orientation": "landscape", "tone": "bright", "palette": ["white"],
                                    "black_and_white": True}
    assert not {"landscape", "portrait", "square", "bright", "dark", "mid-tone"} & set(result["labels"])
    assert result["labels"][:4] == ["screenshot", "text", "russian-text", "анна"]


def test_keywords_skip_stop_words_numbers_and_unsure_words():
    def word(text, confidence=95.0):
        return Word(text, confidence, (1, 1, 1), 0.5)

    reading = Reading((word("Было"), word("было"), word("будет"), word("here"), word("2026"), word("городс", 60),
                       word("Концерт"), word("концерт,"), word("билеты")))
    assert keywords(reading) == ["концерт", "билеты"]


def test_a_face_is_a_person(local):
    result = analysed(local, vision_set.render(next(s for s in IMAGES if s["name"] == "astronaut"))[0])
    assert "person" in result["labels"] and result["faces"] == 1
    assert "1 face" in result["description"]


def test_different_photos_get_different_descriptions(local):
    flowers = [spec for spec in REAL_PHOTOS if spec["name"].startswith("flower_")] + [
        spec for spec in REAL_PHOTOS if spec["name"] == "meadow"]
    descriptions = {analysed(local, vision_set.render(spec)[0])["description"] for spec in flowers}
    assert len(descriptions) == len(flowers) == 4


def test_a_coloured_card_with_a_few_words_is_not_an_infographic(local):
    from devtools.sample import render_text_image

    result = local.analyse(render_text_image(["DRONE", "ONE"], size=(320, 180), background="#1d3557",
                                             color="#f1faee"))  # a video's preview card
    assert result["kind"] == "other" and result["ocr"]["text"] == "DRONE\nONE"
