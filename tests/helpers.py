"""Small helpers shared by test modules."""

from __future__ import annotations

import asyncio
from typing import Any

from include.album.archive import ArchiveTelegramClient
from include.album.ingest import ingest_channel

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
