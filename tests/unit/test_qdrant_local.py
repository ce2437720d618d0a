"""The fast paths installed into qdrant-client's local mode answer exactly as the library does."""

import random

import numpy as np
import pytest
from qdrant_client import models
from qdrant_client.local.payload_filters import check_filter
from qdrant_client.local.sparse_distances import calculate_distance_sparse

from include.album.stores.qdrant_local import compile_filter, sparse_scores

RANDOM = random.Random(20261205)
TENANTS, KINDS, LABELS = ["acme", "globex", "initech"], ["album", "post"], ["photo", "text", "person", "red"]


def payload() -> dict:
    found = {"tenant_ids": RANDOM.sample(TENANTS, RANDOM.randint(0, 2)), "kind": RANDOM.choice(KINDS),
             "channel_id": RANDOM.choice([1, 2, 3]), "posted_ts": RANDOM.randint(0, 100),
             "has_text": RANDOM.choice([True, False]), "labels": RANDOM.sample(LABELS, RANDOM.randint(0, 3)),
             "score": RANDOM.choice([1, 1.0, True, "1"])}
    if RANDOM.random() < 0.6:
        found["album_id"] = RANDOM.choice([1, 2, None])
    return found


def condition(depth: int = 0):
    shapes = [
        lambda: models.FieldCondition(key="tenant_ids", match=models.MatchValue(value=RANDOM.choice(TENANTS))),
        lambda: models.FieldCondition(key="kind", match=models.MatchValue(value=RANDOM.choice(KINDS))),
        lambda: models.FieldCondition(key="has_text", match=models.MatchValue(value=RANDOM.choice([True, False]))),
        lambda: models.FieldCondition(key="album_id", match=models.MatchValue(value=RANDOM.choice([1, 2]))),
        lambda: models.FieldCondition(key="album_id", range=models.Range(gte=0)),
        lambda: models.FieldCondition(key="score", match=models.MatchValue(value=RANDOM.choice([1, True, "1"]))),
        lambda: models.FieldCondition(key="channel_id", match=models.MatchAny(any=RANDOM.sample([1, 2, 3], 2))),
        lambda: models.FieldCondition(key="labels", match=models.MatchAny(any=RANDOM.sample(LABELS, 2))),
        lambda: models.FieldCondition(key="posted_ts", range=models.Range(gte=RANDOM.randint(0, 50),
                                                                          lt=RANDOM.randint(50, 100))),
    ]
    if depth < 2 and RANDOM.random() < 0.3:
        return random_filter(depth + 1)
    return RANDOM.choice(shapes)()


def random_filter(depth: int = 0) -> models.Filter:
    parts = {}
    for name in ("must", "must_not", "should"):
        if RANDOM.random() < 0.6:
            parts[name] = [condition(depth) for _ in range(RANDOM.randint(0, 3))]
    return models.Filter(**parts)


def test_a_compiled_filter_answers_as_the_librarys_check():
    for _ in range(300):
        payload_filter = random_filter()
        predicate = compile_filter(payload_filter)
        assert predicate is not None, payload_filter
        for _ in range(20):
            sample = payload()
            assert predicate(sample) == check_filter(payload_filter, sample, "x", {}), (payload_filter, sample)


def test_shapes_it_does_not_compile_go_to_the_library():
    for unsupported in (models.Filter(must=[models.HasIdCondition(has_id=[1])]),
                        models.Filter(must=[models.FieldCondition(key="a.b", match=models.MatchValue(value=1))]),
                        models.Filter(must=[models.IsEmptyCondition(is_empty=models.PayloadField(key="labels"))]),
                        models.Filter(min_should=models.MinShould(conditions=[], min_count=1))):
        assert compile_filter(unsupported) is None


@pytest.mark.parametrize("empty_is_zero", [False, True])
def test_sparse_scores_are_the_librarys(empty_is_zero):
    def vector(size):
        indices = sorted(RANDOM.sample(range(60), size))
        return models.SparseVector(indices=indices, values=[round(RANDOM.uniform(0.1, 2), 4) for _ in indices])

    vectors = [vector(RANDOM.randint(0, 12)) for _ in range(300)]
    for _ in range(30):
        query = vector(RANDOM.randint(1, 4))
        expected = calculate_distance_sparse(query, vectors, empty_is_zero=empty_is_zero)
        assert np.array_equal(sparse_scores(query, vectors, empty_is_zero), expected)
