"""The album graph on Neo4j or FalkorDB, from the same ``include/cypher`` files.

``(:Tenant)-[:SUBSCRIBES]->(:Channel)-[:HAS_ALBUM]->(:Album)-[:CONTAINS {position}]->(:Post)``
plus ``(:Album)-[:LABELED]->(:Label)`` for label queries. Writes are MERGE, batched with
UNWIND; deletions prune edges an album no longer has and remove what was deleted on Telegram. Ids: ``album_id`` and
``channel_id`` are integers, ``post_id`` is ``"<channel_id>:<message_id>"``, as in Qdrant.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any, Protocol

log = logging.getLogger(__name__)

CYPHER_DIR = Path(__file__).resolve().parents[2] / "cypher"
UNIQUE_KEYS = (("Tenant", "tenant_id"), ("Channel", "channel_id"), ("Album", "album_id"), ("Post", "post_id"),
               ("Label", "name"))


@cache
def cypher(name: str) -> str:
    """The statement in ``include/cypher/<name>.cypher``, without its ``//`` comment lines."""
    path = CYPHER_DIR / f"{name}.cypher"
    if not path.is_file():
        raise FileNotFoundError(f"no Cypher statement named {name!r} in {CYPHER_DIR}")
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if not line.lstrip().startswith("//")]
    return "\n".join(lines).strip()


def post_id(channel_id: int, message_id: int) -> str:
    return f"{channel_id}:{message_id}"


class GraphBackend(Protocol):
    name: str

    def run(self, statement: str, params: dict[str, Any] | None = None) -> list[dict]: ...

    def ensure_schema(self) -> None: ...

    def close(self) -> None: ...


class Neo4jGraph:
    """Neo4j through the official driver (the driver of ``Neo4jHook``)."""

    name = "neo4j"

    def __init__(self, driver: Any, database: str | None = None):
        self.driver = driver
        self.database = database

    def run(self, statement: str, params: dict[str, Any] | None = None) -> list[dict]:
        records, _, _ = self.driver.execute_query(statement, params or {}, database_=self.database)
        return [record.data() for record in records]

    def ensure_schema(self) -> None:
        for statement in cypher("schema_neo4j").splitlines():
            if statement.strip():
                self.run(statement)

    def close(self) -> None:
        self.driver.close()


class FalkorGraph:
    """FalkorDB through the ``falkordb`` client (its Bolt port does not work with the neo4j driver)."""

    name = "falkordb"

    def __init__(self, db: Any, graph: str):
        self.db = db
        self.graph = db.select_graph(graph)

    def run(self, statement: str, params: dict[str, Any] | None = None) -> list[dict]:
        result = self.graph.query(statement, params or {})
        columns = [column[1] if isinstance(column, list | tuple) else column for column in result.header]
        return [dict(zip(columns, row, strict=True)) for row in result.result_set]

    def ensure_schema(self) -> None:
        try:
            existing = {(c["label"], tuple(c["properties"])) for c in self.graph.list_constraints()}
        except Exception:  # noqa: BLE001 - a graph that does not exist yet has no constraints
            existing = set()
        for label, key in UNIQUE_KEYS:
            if (label, (key,)) in existing:
                continue
            try:  # FalkorDB: a unique constraint needs an exact-match index on the property first
                self.graph.create_node_range_index(label, key)
            except Exception as exc:  # noqa: BLE001 - "already indexed" is fine
                log.debug("index %s.%s: %s", label, key, exc)
            self.graph.create_node_unique_constraint(label, key)

    def close(self) -> None:
        self.db.connection.close()


def write_subscriptions(graph: GraphBackend, rows: Sequence[dict]) -> None:
    if rows:
        graph.run(cypher("merge_subscriptions"), {"rows": list(rows)})


def write_albums(graph: GraphBackend, albums: Sequence[dict], items: Sequence[dict], labels: Sequence[dict]) -> None:
    """Upsert albums with their items and labels, then prune what each album no longer has."""
    if not albums:
        return
    graph.run(cypher("merge_albums"), {"rows": list(albums)})
    if items:
        graph.run(cypher("merge_album_items"), {"rows": list(items)})
    if labels:
        graph.run(cypher("merge_album_labels"), {"rows": list(labels)})
    for album in albums:
        album_id = album["album_id"]
        graph.run(cypher("prune_album_items"), {
            "album_id": album_id, "post_ids": [i["post_id"] for i in items if i["album_id"] == album_id]})
        graph.run(cypher("prune_album_labels"), {
            "album_id": album_id, "labels": [row["label"] for row in labels if row["album_id"] == album_id]})


def delete_posts(graph: GraphBackend, post_ids: Sequence[str]) -> None:
    if post_ids:
        graph.run(cypher("delete_posts"), {"post_ids": list(post_ids)})


def delete_albums(graph: GraphBackend, album_ids: Sequence[int]) -> None:
    if album_ids:
        graph.run(cypher("delete_albums"), {"album_ids": list(album_ids)})


def albums_dated(graph: GraphBackend, since: str, until: str) -> dict[int, dict]:
    """Album id -> {content_hash, items} of albums posted in [since, until) (ISO timestamps)."""
    rows = graph.run(cypher("albums_dated"), {"since": since, "until": until})
    return {row["album_id"]: row for row in rows}
