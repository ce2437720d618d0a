"""Hybrid search in Qdrant's local mode: words that stand in a text are found first, by any
inflection; what matches nothing, and text-less points asked for free text, are not returned;
the tenant filter bounds every query. The corpus is the ru/en retrieval set's documents as
distractors, plus albums and posts written the way indexing writes them."""

import json
import logging
from pathlib import Path

import pytest
from qdrant_client import QdrantClient, models

from include.album.providers.embeddings import default_embedder
from include.album.steps.indexing import album_text, post_text
from include.album.stores.qdrant import IndexDoc, QdrantIndex, album_point_id, post_point_id

pytestmark = pytest.mark.integration

SET = json.loads((Path(__file__).parents[2] / "data" / "retrieval_ru_en.json").read_text(encoding="utf-8"))
LAB, NEWS = 1111111111, 2222222222
POSTED = {"posted_at": "2026-01-05T10:00:00+00:00", "posted_ts": 1767607200}
HOPPER, TWEET, PHOTOS = 1, 2, 3          # album ids
WALK, FARE = 901, 902                    # message ids of posts outside albums


def channel(channel_id: int, tenants: list[str]) -> dict:
    names = {LAB: ("album_lab", "Album Lab"), NEWS: ("novosti_test", "Новости теста")}[channel_id]
    return {"channel_id": channel_id, "tenant_ids": tenants, "channel_username": names[0], "channel_title": names[1],
            **POSTED}


def album(album_id: int, captions: list[str], ocr: list[str], labels: list[str]) -> list[IndexDoc]:
    """An album's point and its item posts' points, with the texts indexing gives them."""
    enrichment = {"provider_key": "local:heuristic-2", "ocr_text": "\n".join(ocr), "vision_labels": labels}
    base = {**channel(LAB, ["acme"]), "album_id": album_id}
    docs = [IndexDoc(album_point_id(album_id), album_text(captions, enrichment),
                     {**base, "kind": "album", "labels": labels})]
    for position, (caption, text) in enumerate(zip(captions, ocr, strict=True)):
        message_id = album_id * 100 + position
        docs.append(IndexDoc(post_point_id(LAB, message_id), post_text(caption, {"ocr": {"text": text}}),
                             {**base, "kind": "post", "message_id": message_id, "position": position,
                              "labels": labels}))
    return docs


@pytest.fixture(scope="module")
def index() -> QdrantIndex:
    index = QdrantIndex(QdrantClient(":memory:"), "hybrid", default_embedder())
    index.ensure_collection()
    distractors = [IndexDoc(post_point_id(NEWS, int(d["id"][1:])), d["text"], {
        **channel(NEWS, ["acme", "globex"]), "kind": "post", "message_id": int(d["id"][1:]), "labels": []})
        for d in SET["documents"]]
    index.upsert([
        *distractors,
        *album(HOPPER, ["Grace Hopper, pioneer of computer programming", ""], ["", ""], ["photo", "person"]),
        *album(TWEET, ["", ""], ["ВСЕ КТО ПРИДЁТ ДО 9 УТРА ПОЛУЧАТ КАПУЧИНО БЕСПЛАТНО", ""],
               ["screenshot", "text"]),
        *album(PHOTOS, ["", "", ""], ["", "", ""], ["photo", "flower", "yellow"]),  # no text at all
        IndexDoc(post_point_id(LAB, WALK), "Прогулка по набережной в воскресенье, сбор в полдень",
                 {**channel(LAB, ["acme"]), "kind": "post", "message_id": WALK, "labels": []}),
        IndexDoc(post_point_id(LAB, FARE), "С марта проезд стоит 73 рубля. #транспорт",
                 {**channel(LAB, ["acme"]), "kind": "post", "message_id": FARE, "labels": []}),
        IndexDoc(post_point_id(NEWS, 999), "Grace Hopper: a talk for the other tenant", {
            **channel(NEWS, ["globex"]), "kind": "post", "message_id": 999, "labels": []}),
    ])
    return index


def first(index: QdrantIndex, query: str, tenant: str = "acme", **filters):
    hits = index.search(tenant, query, **filters)
    assert hits, f"{query!r} found nothing"
    return hits[0]


@pytest.mark.parametrize(("query", "album_id", "message_id"), [
    ("Grace Hopper", HOPPER, None),                   # a name in a caption
    ("капучино бесплатно", TWEET, None),              # only in the text on a photo (OCR)
    ("Набережная улица", None, WALK),                 # an inflected Russian word
    ("73 рубля", None, FARE),                         # a number
    ("#транспорт", None, FARE),                       # a hashtag
])
def test_words_that_stand_in_a_text_are_found_first(index, query, album_id, message_id):
    hit = first(index, query)
    assert (hit.album_id, hit.message_id if album_id is None else None) == (album_id, message_id), hit


def test_albums_only_finds_an_album_by_the_text_on_one_of_its_photos(index):
    hit = first(index, "капучино бесплатно", kind="album")
    assert (hit.kind, hit.album_id) == ("album", TWEET)


def test_a_channel_is_found_by_its_title_and_username(index):
    assert first(index, "Album Lab").channel_id == LAB
    assert first(index, "@album_lab").channel_id == LAB


@pytest.mark.parametrize("query", ["qwertyuiop", "zzzz xxxx", "квантовая хромодинамика глюонов",
                                   "purple elephant tax refund on mars"])
def test_what_matches_nothing_has_no_hits(index, query):
    assert index.search("acme", query) == []


def test_a_text_less_album_answers_its_labels_and_never_free_text(index):
    for query in ("Grace Hopper", "капучино бесплатно", "weekend by the sea", "a walk in the garden"):
        assert PHOTOS not in {h.album_id for h in index.search("acme", query)}, query
    assert PHOTOS in {h.album_id for h in index.search("acme", "yellow flower")}


def test_the_tenant_filter_bounds_every_query(index):
    hopper = index.search("acme", "Grace Hopper")
    assert hopper[0].album_id == HOPPER
    assert 999 not in {h.message_id for h in hopper}  # the same words in another tenant's post
    assert [h.message_id for h in index.search("globex", "Grace Hopper")][0] == 999
    assert not {h.album_id for h in index.search("globex", "капучино бесплатно")} & {HOPPER, TWEET, PHOTOS}
    widen = models.Filter(should=[models.FieldCondition(key="tenant_ids", match=models.MatchValue(value="globex"))])
    assert 999 not in {h.message_id for h in index.search("acme", "Grace Hopper", extra=widen)}


def test_a_renamed_channel_is_found_by_its_new_names_only(index):
    try:
        assert index.rename_channel(LAB, "lab_renamed", "Фотолаборатория") > 0
        assert first(index, "@lab_renamed").channel_id == LAB
        assert first(index, "фотолаборатория").channel_id == LAB
        old_name = index.search("acme", "@album_lab")
        assert not {WALK, FARE} & {h.message_id for h in old_name} and HOPPER not in {h.album_id for h in old_name}
        [point] = index.client.retrieve("hybrid", [post_point_id(LAB, WALK)], with_payload=True)
        assert (point.payload["channel_username"], point.payload["channel_title"]) == ("lab_renamed", "Фотолаборатория")
    finally:
        index.rename_channel(LAB, "album_lab", "Album Lab")


def test_a_collection_of_the_dense_only_schema_is_still_written_and_searched(caplog):
    client = QdrantClient(":memory:")
    embedder = default_embedder()
    client.create_collection("old", vectors_config=models.VectorParams(size=embedder.dim,
                                                                       distance=models.Distance.COSINE),
                             metadata={"embedding": embedder.key})
    old = QdrantIndex(client, "old", embedder)
    with caplog.at_level(logging.WARNING):
        old.ensure_collection()
    assert "dense-only schema" in caplog.text and "reindex --collection" in caplog.text
    assert not old.hybrid
    old.upsert([IndexDoc(post_point_id(LAB, 1), "Grace Hopper, pioneer of computer programming",
                         {**channel(LAB, ["acme"]), "kind": "post", "message_id": 1, "labels": []})])
    assert first(old, "pioneer of programming").message_id == 1
