"""Qdrant's local mode, made fast enough to search tens of thousands of points interactively.

qdrant-client's local mode (the embedded default, ``albums_qdrant`` extra ``path``) answers
like a server but computes in Python, point by point. Profiled at 20,000 points, a hybrid
search spent ~70 % of its time building the filter masks (every payload walked through the
generic condition code, its JSON path parsed again for every point and condition) and ~25 %
scoring the sparse vectors (a merge loop per point). ``speed_up()`` replaces both, for the
shapes this project uses, with code that gives the same answers:

* **Masks**: a filter of ``must`` / ``must_not`` / ``should`` over nested filters and
  ``FieldCondition``s on a top-level key with ``MatchValue``, ``MatchAny`` or a numeric
  ``Range`` is compiled once into a predicate, which reuses the library's own value comparison
  (``values_match``, ``check_range``). Any other filter goes to the library's code, unchanged.
* **Sparse scores**: a point whose terms are disjoint from the query's is skipped by a set test
  in C, and the dot product is taken only where they meet.

``tests/unit/test_qdrant_local.py`` holds both to the library's answers on random payloads,
filters and vectors. Nothing here runs against a Qdrant server (which has real indexes).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from qdrant_client import models

log = logging.getLogger(__name__)

Predicate = Callable[[dict], bool]
_TOP_LEVEL_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_applied = False


def speed_up() -> None:
    """Install the fast mask and sparse scoring into qdrant-client's local mode (once)."""
    global _applied
    if _applied:
        return
    from qdrant_client.local import local_collection

    original_mask = local_collection.calculate_payload_mask

    def calculate_payload_mask(payloads, payload_filter, ids_inv, deleted_per_vector):
        predicate = compile_filter(payload_filter) if payload_filter is not None else None
        if predicate is None:
            return original_mask(payloads, payload_filter, ids_inv, deleted_per_vector)
        return np.fromiter(map(predicate, payloads), dtype=bool, count=len(payloads))

    local_collection.calculate_payload_mask = calculate_payload_mask
    local_collection.calculate_distance_sparse = sparse_scores
    _applied = True


def compile_filter(payload_filter: models.Filter) -> Predicate | None:
    """A predicate on a payload equal to the library's ``check_filter``, or None when the filter
    has a condition outside the shapes compiled here."""
    if payload_filter.min_should is not None:
        return None
    clauses: dict[str, list[Predicate]] = {}
    for name in ("must", "must_not", "should"):
        conditions = getattr(payload_filter, name)
        if conditions is None:
            continue
        predicates = [_condition(c) for c in (conditions if isinstance(conditions, list) else [conditions])]
        if any(p is None for p in predicates):
            return None
        clauses[name] = predicates
    must, must_not, should = clauses.get("must", []), clauses.get("must_not", []), clauses.get("should", [])
    if len(must) == 1 and not must_not and not should:
        return must[0]  # the common shape (the tenant filter): no wrapper

    def predicate(payload: dict) -> bool:
        return (all(p(payload) for p in must) and not any(p(payload) for p in must_not)
                and (not should or any(p(payload) for p in should)))  # an empty should constrains nothing

    return predicate


def _condition(condition: Any) -> Predicate | None:
    from qdrant_client.local.payload_filters import check_range, values_match

    if isinstance(condition, models.Filter):
        return compile_filter(condition)
    if not isinstance(condition, models.FieldCondition) or not _TOP_LEVEL_KEY.fullmatch(condition.key):
        return None
    if (condition.match is not None and condition.range is not None) or any(
            getattr(condition, other) is not None
            for other in ("values_count", "is_empty", "is_null", "geo_bounding_box", "geo_radius", "geo_polygon")):
        return None
    key, match, bounds = condition.key, condition.match, condition.range
    if isinstance(match, models.MatchValue) and isinstance(match.value, str):
        target = match.value

        def equal_text(payload: dict) -> bool:  # a text equals only a text: plain == is values_match here
            value = payload.get(key)
            return target in value if isinstance(value, list) else value == target

        return equal_text
    if isinstance(match, models.MatchValue):
        target = match.value
        return lambda payload: any(values_match(v, target) for v in _values(payload, key))
    if isinstance(match, models.MatchAny):
        targets = list(match.any)
        return lambda payload: any(values_match(v, t) for v in _values(payload, key) for t in targets)
    if isinstance(bounds, models.Range):
        return lambda payload: any(check_range(bounds, v) for v in _values(payload, key))
    return None


def _values(payload: dict, key: str) -> Sequence[Any]:
    """The values a top-level key selects, an array unwrapped one level (as ``value_by_key``)."""
    if key not in payload:
        return ()
    value = payload[key]
    return value if isinstance(value, list) else (value,)


def sparse_scores(query: models.SparseVector, vectors: list[models.SparseVector],
                  empty_is_zero: bool = False) -> np.ndarray:
    """The library's ``calculate_distance_sparse``: the dot product with each vector, and for a
    vector sharing no index with the query -inf (0 with ``empty_is_zero``)."""
    weights = dict(zip(query.indices, query.values, strict=True))
    terms = weights.keys()
    scores = np.full(len(vectors), 0.0 if empty_is_zero else -np.inf, dtype=np.float32)
    for row, vector in enumerate(vectors):
        if terms.isdisjoint(vector.indices):
            continue
        scores[row] = sum(weights[i] * v for i, v in zip(vector.indices, vector.values, strict=True) if i in weights)
    return scores
