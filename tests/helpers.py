"""Small helpers shared by test modules."""

from __future__ import annotations

import asyncio
from typing import Any

from include.album.source.archive import ArchiveTelegramClient
from include.album.steps.ingest import ingest_channel

TABLES = ("channels", "tenants", "subscriptions", "posts", "media_objects", "media_groups", "media_group_items",
          "ingest_skips")


def s3_keys(s3_client: Any, bucket: str) -> list[str]:
    keys = []
    for page in s3_client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys.extend(item["Key"] for item in page.get("Contents", []))
    return sorted(keys)


def snapshot(conn: Any) -> dict[str, Any]:
    """Row counts, marks and album compositions: what a rerun must leave unchanged."""
    counts = {table: conn.execute(f"SELECT count(*) AS n FROM {table}").fetchone()["n"] for table in TABLES}
    marks = {r["id"]: r["hwm"] for r in conn.execute("SELECT id, hwm FROM channels")}
    albums = {r["id"]: (r["content_hash"], r["items_count"]) for r in
              conn.execute("SELECT id, content_hash, items_count FROM media_groups")}
    return {"counts": counts, "marks": marks, "albums": albums}


def ingest_all(conn: Any, store: Any, archive: Any, expected: dict, settings: Any, **client_options: Any) -> dict:
    """Ingest every channel of an archive, one client per channel as in the DAG's mapped tasks."""
    return {c["id"]: ingest_channel(conn, store, ArchiveTelegramClient(archive, **client_options), c["id"], settings)
            for c in expected["channels"]}


def flood_wait(channel_id: int, seconds: int) -> Any:
    """Telegram answering the channel's next request for messages with ``FLOOD_WAIT_<seconds>``, once."""
    from include.album.source.archive import Fault

    return Fault(f"FLOOD_WAIT_{seconds}", channel=channel_id, rpcs=frozenset({"history", "messages"}))


def run(coro: Any) -> Any:
    return asyncio.run(coro)


class MemoVision:
    """A real provider whose results are memoised by content across tests, to keep the suite fast.

    The pipeline's own cache (``vision_results``) is per database, so each test still counts
    its vision calls there; only the repeated OCR of the same sample images is saved.
    """

    _memo: dict[tuple[str, str], dict] = {}

    def __init__(self, provider: Any):
        self.provider = provider
        self.name, self.model, self.key = provider.name, provider.model, provider.key

    def analyse(self, data: bytes) -> dict:
        import hashlib

        memo_key = (self.key, hashlib.sha256(data).hexdigest())
        if memo_key not in self._memo:
            self._memo[memo_key] = self.provider.analyse(data)  # UnusableImage propagates, uncached
        return dict(self._memo[memo_key])


class RecordingWebhook:
    """A loopback HTTP server that records the JSON bodies POSTed to it."""

    def __init__(self) -> None:
        import json
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        received: list[dict] = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.received = received
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/alerts"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


# Bookkeeping columns that legitimately move on every pull: when a channel was last pulled or asked about,
# when a skip was last seen again. Everything else must be identical after a rerun.
VOLATILE_COLUMNS = {"channels": {"last_pulled_at", "top_checked_at", "updated_at"}, "ingest_skips": {"last_seen_at"}}
ALL_TABLES = (*TABLES, "vision_results", "album_summaries", "album_failures", "schema_migrations")


def store_state(conn: Any, s3_client: Any, bucket: str, qdrant: Any = None, collection: str | None = None,
                graph: Any = None) -> dict[str, Any]:
    """Every row of every table, every S3 object, every Qdrant point and every graph node and
    edge (with their contents): what a rerun, a clear or a retry must leave identical."""
    import hashlib

    rows = {}
    for table in ALL_TABLES:
        volatile = VOLATILE_COLUMNS.get(table, set())
        rows[table] = sorted(
            repr(sorted((k, v) for k, v in row.items() if k not in volatile))
            for row in conn.execute(f"SELECT * FROM {table}"))  # noqa: S608 - fixed table names
    objects = {key: hashlib.sha256(s3_client.get_object(Bucket=bucket, Key=key)["Body"].read()).hexdigest()
               for key in s3_keys(s3_client, bucket)}
    state = {"postgres": rows, "s3": objects}
    if qdrant is not None:
        state["qdrant"] = qdrant_points(qdrant, collection)
    if graph is not None:
        state["graph"] = graph_state(graph)
    return state


def qdrant_points(qdrant: Any, collection: str, clean: Any = None) -> dict[str, tuple[str, tuple]]:
    """Point id -> (payload, vectors) of every point; ``clean`` maps each payload first."""
    points, offset = {}, None
    while True:
        batch, offset = qdrant.scroll(collection, limit=1000, offset=offset, with_payload=True, with_vectors=True)
        points.update({str(p.id): (repr(sorted((clean(p.payload) if clean else p.payload).items())),
                                   vectors(p.vector)) for p in batch})
        if offset is None:
            return points


# Measured durations: they differ whenever a step is redone, however identical its result.
PROCESSING_DURATIONS = {"duration_ms", "assembly_lag_seconds"}


def without_processing_times(value: Any, since: Any) -> Any:
    """``value`` with every timestamp at or after ``since`` (a datetime, or an ISO 8601 string as
    in JSON documents) and every measured duration replaced by a placeholder, in nested dicts
    and lists too. Content times (when a message was posted) are older and stay."""
    import re
    from datetime import UTC, datetime

    def recent(moment: datetime) -> bool:
        return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)) >= since

    if isinstance(value, dict):
        return {k: "<duration>" if k in PROCESSING_DURATIONS else without_processing_times(v, since)
                for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [without_processing_times(v, since) for v in value]
    if isinstance(value, datetime):
        return "<time>" if recent(value) else value
    if isinstance(value, str) and re.match(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}", value):
        try:
            return "<time>" if recent(datetime.fromisoformat(value)) else value
        except ValueError:
            return value
    return value


def store_contents(conn: Any, s3_client: Any, bucket: str, qdrant: Any, collection: str, graph: Any, *,
                   since: Any) -> dict[str, Any]:
    """``store_state`` without the times of processing: every timestamp at or after ``since`` and
    every measured duration masked (``without_processing_times``), in Postgres rows and JSON
    columns, in the JSON documents in S3 (other objects by content hash), in Qdrant payloads and
    in graph properties. What a redone step must reproduce exactly, whenever it ran."""
    import hashlib
    import json

    def clean(value: Any) -> Any:
        return without_processing_times(value, since)

    rows = {}
    for table in ALL_TABLES:
        volatile = VOLATILE_COLUMNS.get(table, set())
        rows[table] = sorted(repr(sorted(clean({k: v for k, v in row.items() if k not in volatile}).items()))
                             for row in conn.execute(f"SELECT * FROM {table}"))  # noqa: S608 - fixed names
    objects = {}
    for key in s3_keys(s3_client, bucket):
        body = s3_client.get_object(Bucket=bucket, Key=key)["Body"].read()
        objects[key] = json.dumps(clean(json.loads(body)), sort_keys=True, ensure_ascii=False) \
            if key.endswith(".json") else hashlib.sha256(body).hexdigest()
    return {"postgres": rows, "s3": objects, "qdrant": qdrant_points(qdrant, collection, clean),
            "graph": graph_state(graph, clean)}


class Vector(tuple):
    """A vector compared with a tolerance: re-embedding the same text in a batch of another size
    moves the last float digits (~1e-5), which is not a change."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, tuple) and len(self) == len(other) and all(
            abs(a - b) <= 1e-4 for a, b in zip(self, other, strict=True))

    __hash__ = tuple.__hash__


def vectors(vector: Any) -> tuple:
    """A point's vectors, comparable with a tolerance: an unnamed vector, or (name, vector) pairs
    of named ones, a sparse one as (its indices, its values)."""
    if not isinstance(vector, dict):
        return Vector(vector)
    return tuple(sorted((name, (tuple(v.indices), Vector(v.values)) if hasattr(v, "indices") else Vector(v))
                        for name, v in vector.items()))


def graph_state(graph: Any, clean: Any = None) -> dict[str, list[str]]:
    """Every node and edge with its properties; ``clean`` maps each property dict first."""
    def props(value: dict) -> list:
        return sorted((clean(value) if clean else value).items())

    nodes = graph.run("MATCH (n) RETURN labels(n) AS labels, properties(n) AS props")
    edges = graph.run("MATCH (a)-[r]->(b) RETURN type(r) AS type, properties(a) AS a, properties(r) AS r, "
                      "properties(b) AS b")
    return {"nodes": sorted(repr((n["labels"], props(n["props"]))) for n in nodes),
            "edges": sorted(repr((e["type"], props(e["a"]), props(e["r"]), props(e["b"]))) for e in edges)}


class TcpProxy:
    """A loopback TCP forwarder that can be stopped and restarted on the same port: the service
    behind it keeps its state (moto keeps objects only in memory) while clients see it go down
    (connection refused) and come back."""

    def __init__(self, target_port: int):
        import socket

        self.target_port = target_port
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self._server = None
        self._connections: list = []
        self.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        import socket
        import threading

        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", self.port))
        server.listen(64)
        self._server = server
        threading.Thread(target=self._accept, args=(server,), daemon=True).start()

    def stop(self) -> None:
        """Refuse new connections and cut the open ones."""
        import socket

        server, self._server = self._server, None
        if server is not None:
            server.close()
        for sock in self._connections:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
        self._connections.clear()

    def _accept(self, server) -> None:
        import socket
        import threading

        while True:
            try:
                client, _ = server.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            self._connections += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source, sink) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            try:
                sink.shutdown(1)
            except OSError:
                pass


def fail_storing(monkeypatch: Any, channel_id: int, error: str) -> Any:
    """Injected: storing ``channel_id``'s messages raises ``ValueError(error)`` (as a message the code
    cannot store would), every other channel is stored. Returns a function that removes the fault."""
    from include.album.steps import ingest

    write_fetched = ingest.write_fetched

    def fails_for_one_channel(connection: Any, channel: int, fetched: Any, **kwargs: Any) -> Any:
        if channel == channel_id:
            raise ValueError(error)
        return write_fetched(connection, channel, fetched, **kwargs)

    monkeypatch.setattr(ingest, "write_fetched", fails_for_one_channel)
    return lambda: monkeypatch.setattr(ingest, "write_fetched", write_fetched)
