"""Queries of the album graph that only the tests ask (the statements in tests/cypher/)."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from pathlib import Path

from include.album.stores.graph import GraphBackend

CYPHER_DIR = Path(__file__).parent / "cypher"


@cache
def cypher(name: str) -> str:
    lines = (CYPHER_DIR / f"{name}.cypher").read_text(encoding="utf-8").splitlines()
    return "\n".join(line for line in lines if not line.lstrip().startswith("//")).strip()


def albums_of_channel(graph: GraphBackend, channel_id: int, limit: int = 50) -> list[dict]:
    return graph.run(cypher("albums_of_channel"), {"channel_id": channel_id, "limit": limit})


def albums_by_labels(graph: GraphBackend, labels: Sequence[str], limit: int = 50) -> list[dict]:
    wanted = sorted({label.strip().lower() for label in labels if label.strip()})
    return graph.run(cypher("albums_by_labels"), {"labels": wanted, "limit": limit}) if wanted else []


def album_posts(graph: GraphBackend, album_id: int) -> list[dict]:
    return graph.run(cypher("album_posts"), {"album_id": album_id})


def counts(graph: GraphBackend) -> dict[str, int]:
    row = graph.run(cypher("graph_counts"))[0]
    return {"nodes": row["nodes"], "relationships": row["relationships"]}
