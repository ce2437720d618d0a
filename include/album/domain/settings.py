"""The pipeline's one settings record, with documented defaults.

In Airflow the values come from the JSON Variable ``telegram_albums_settings`` (any subset of
the fields below), read by ``orchestration.connections.load_settings``; the CLI and the tests
build ``Settings`` directly. What Airflow needs at parse time is in ``orchestration.deployment``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, fields
from typing import Any

VARIABLE_NAME = "telegram_albums_settings"
# Settings that existed once: ignored with a warning, so an old Variable does not stop the DAG.
RETIRED = {"album_batch_size": "albums_mapped_per_run alone sets how many album groups a run has"}

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Settings:
    # Connections (ids of Airflow connections).
    albums_db_conn_id: str = "albums_db"          # Postgres application database
    s3_conn_id: str = "albums_s3"                  # S3/MinIO (extra endpoint_url for MinIO/moto)
    telegram_conn_id: str = "telegram_default"     # login=api_id, password=api_hash, extra session|archive
    redis_conn_id: str = "albums_redis"            # album_seen hints; optional (Postgres decides)
    vision_conn_id: str = "vision_openai"          # OpenAI-compatible endpoint: host/extra base_url, password=key
    qdrant_conn_id: str = "albums_qdrant"          # Qdrant server (host/url, password=api key) or extra.path (local)
    graph_conn_id: str = "albums_graph"            # Neo4j (conn_type neo4j) or FalkorDB (conn_type falkordb)
    embedding_conn_id: str = "embeddings_openai"   # OpenAI-compatible /embeddings: extra base_url, model
    # Storage.
    s3_bucket: str = "telegram-albums"
    # Ingestion.
    media_size_cap_bytes: int = 40 * 1024 * 1024  # larger media are recorded as skipped, not fetched
    max_messages_per_pull: int = 1000             # per channel per run; the mark catches up next run
    channels_mapped_per_run: int = 8              # mapped ingest units per run: one per changed channel up
                                                  # to this many, beyond it this many units of several
    flood_sleep_threshold_seconds: int = 60       # shorter FloodWaits are slept, longer defer the channel
    # Albums.
    vision_provider: str = "local"                # local | openai
    assembly_timeout_minutes: int = 30            # then an album with items lacking vision is assembled partial
    albums_mapped_per_run: int = 8                # mapped album groups per run: one per album up to this
                                                  # many albums, beyond it this many groups of several albums
    # Refresh (the daily telegram_albums_refresh DAG): how far back to re-read posts for edits
    # and deletions, and to reconcile S3, Qdrant and the graph with Postgres.
    refresh_lookback_hours: int = 48
    # Search.
    embedding_provider: str = "local"             # local | openai
    qdrant_collection: str = "telegram_albums"

    def __post_init__(self) -> None:
        for name in ("vision_provider", "embedding_provider"):
            if getattr(self, name) not in ("local", "openai"):
                raise ValueError(f"{name} must be 'local' or 'openai', not {getattr(self, name)!r}")
        for name in ("albums_mapped_per_run", "channels_mapped_per_run"):  # Airflow's max_map_length is 1024
            if not 1 <= getattr(self, name) <= 1000:
                raise ValueError(f"{name} must be 1..1000")

    @classmethod
    def from_mapping(cls, values: dict[str, Any] | None) -> Settings:
        values = dict(values or {})
        for name in sorted(set(values) & set(RETIRED)):
            log.warning("setting %s in %s is no longer used (%s); remove it", name, VARIABLE_NAME, RETIRED[name])
            del values[name]
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ValueError(f"unknown settings {unknown} in {VARIABLE_NAME}; known: {sorted(known)}")
        converted = {}
        for name, value in values.items():
            default = known[name].default
            converted[name] = type(default)(value) if default is not None else value
        return cls(**converted)
