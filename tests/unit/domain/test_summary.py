"""Album vision summary v1: the replaced system's semantics with its bugs fixed."""

from datetime import UTC, datetime, timedelta

from include.album.domain.summary import ItemVision, aggregate, normalise

POSTED = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
ASSEMBLED = POSTED + timedelta(seconds=90)


def item(position: int, description: str = "", labels=(), ocr: str | None = None, meme=False,
         phash: str = "0" * 16, skip: str | None = None) -> ItemVision:
    if skip:
        return ItemVision(position, 100 + position, skip_reason=skip)
    result = {"description": description, "labels": list(labels), "is_meme": meme, "phash": phash,
              "ocr": {"text": ocr, "lang": "en", "engine": "tesseract"} if ocr else None}
    return ItemVision(position, 100 + position, result=result)


def summarize(items, partial=False) -> dict:
    return aggregate(items, posted_at=POSTED, assembled_at=ASSEMBLED, partial=partial)


def test_descriptions_follow_position_not_arrival_and_carry_weights():
    arrived = [item(2, "third"), item(0, "cover"), item(3, "fourth"), item(1, "second")]
    summary = summarize(arrived)
    assert summary["vision_summary"] == "cover | second | third | fourth"
    assert [d["weight"] for d in summary["descriptions"]] == [3.0, 2.5, 2.0, 1.0]


def test_descriptions_are_deduplicated_after_normalisation_and_capped_at_five():
    items = [item(0, "Sunset over the bay!"), item(1, "sunset   over the BAY"), item(2, "Boats, at dawn."),
             item(3, "boats at dawn"), item(4, "d"), item(5, "e"), item(6, "f"), item(7, "g")]
    summary = summarize(items)
    assert summary["vision_summary"] == "Sunset over the bay! | Boats, at dawn. | d | e | f"
    assert normalise("  Hello,\tWorld!! ") == "hello world"


def test_labels_lower_cased_trimmed_counted_across_items_top_twenty():
    items = [item(0, labels=[" Cat ", "dog", "CAT"]), item(1, labels=["cat", "sun"]), item(2, labels=["dog"]),
             item(3, labels=[f"l{n:02d}" for n in range(30)])]
    summary = summarize(items)
    assert summary["vision_labels"][:2] == ["cat", "dog"]
    assert summary["label_counts"]["cat"] == 2  # counted once per item
    assert len(summary["vision_labels"]) == 20
    assert summary["vision_labels"][2] == "sun"  # ties keep first appearance in position order


def test_ocr_text_is_carried_for_up_to_three_items_in_position_order():
    items = [item(3, ocr="four"), item(0, ocr="one"), item(1), item(2, ocr="three"), item(4, ocr="five")]
    summary = summarize(items)
    assert summary["ocr_text"] == "one | three | four"
    assert summary["has_text"] is True


def test_flags_and_counts():
    summary = summarize([item(0, "a", meme=True), item(1, "b"), item(2, skip="not_an_image:application/pdf")])
    assert summary["has_meme"] is True and summary["has_text"] is False
    assert (summary["items_count"], summary["items_analyzed"], summary["items_skipped"]) == (3, 2, 1)
    assert summary["assembly_lag_seconds"] == 90.0
    assert summary["assembled_at"] == ASSEMBLED.isoformat()


def test_near_duplicates_are_listed_by_phash_distance():
    items = [item(0, phash="ffff0000ffff0000"), item(1, phash="ffff0000ffff000f"), item(2, phash="0000ffff0000ffff")]
    assert summarize(items)["near_duplicates"] == [{"positions": [0, 1], "distance": 4}]


def test_empty_album():
    summary = summarize([])
    assert summary["vision_summary"] is None and summary["vision_labels"] == [] and summary["ocr_text"] is None
    assert (summary["has_meme"], summary["has_text"], summary["items_count"]) == (False, False, 0)


def test_all_skipped_album_still_has_a_summary():
    summary = summarize([item(0, skip="no_thumbnail"), item(1, skip="corrupt_image")])
    assert (summary["items_analyzed"], summary["items_skipped"], summary["partial"]) == (0, 2, False)
    assert summary["vision_summary"] is None


def test_partial_album_counts_pending_items_as_neither_analysed_nor_skipped():
    summary = summarize([item(0, "a"), ItemVision(1, 101)], partial=True)
    assert summary["partial"] is True
    assert (summary["items_count"], summary["items_analyzed"], summary["items_skipped"]) == (2, 1, 0)
