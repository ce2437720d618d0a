"""The pipeline's one settings record, with documented defaults.

In Airflow the values come from the JSON Variable ``telegram_albums_settings`` (any subset of
the fields below), read by ``orchestration.connections.load_settings``; the CLI and the tests
build ``Settings`` directly. What Airflow needs at parse time is in ``orchestration.deployment``.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, fields
from typing import Any

VARIABLE_NAME = "telegram_albums_settings"
# Settings that existed once: ignored with a warning, so an old Variable does not stop the DAG.
RETIRED = {"album_batch_size": "albums_mapped_per_run alone sets how many album groups a run has"}

log = logging.getLogger(__name__)


class ConfigurationError(ValueError):
    """A mistake in the deployment's configuration: retrying cannot help, a person must fix it."""


# The bounds of integer settings (the mapped units: under Airflow's max_map_length, 1024).
_MINIMUM = {"media_size_cap_bytes": 1, "max_messages_per_pull": 1, "channels_mapped_per_run": 1,
            "flood_sleep_threshold_seconds": 0, "assembly_timeout_minutes": 0, "albums_mapped_per_run": 1,
            "refresh_lookback_hours": 1, "unavailable_recheck_hours": 1, "media_retry_tries": 1,
            "media_retry_hours": 0, "history_requests_per_task": 1, "history_seconds_per_task": 1}
_MAXIMUM = {"albums_mapped_per_run": 1000, "channels_mapped_per_run": 1000}
_CHOICES = {"vision_provider": ("local", "openai"), "embedding_provider": ("local", "openai")}


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
    unavailable_recheck_hours: int = 24           # a channel Telegram refused (private, banned) is asked
                                                  # again after this long, or at once by `channels enable`
    media_retry_tries: int = 8                    # media whose download failed is fetched again by later
    media_retry_hours: int = 24                   # runs (backoff 5 min doubling to 6 h); after this many
                                                  # failed tries over at least this long it is given up
    # History (the telegram_albums_history DAG): a task hands the session over after this many
    # requests (a page of 100 messages each, downloads not counted) or seconds, and goes on after
    # the live DAG's waiting tasks.
    history_requests_per_task: int = 20
    history_seconds_per_task: int = 120
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
        for f in fields(self):
            value = getattr(self, f.name)
            expected = type(f.default)
            if type(value) is not expected:  # exact: True is not an int here, nor 12.7, nor "50"
                raise ConfigurationError(f"setting {f.name} must be {_TYPE_NAMES[expected]}, not {_shown(value)} "
                                         f"({_TYPE_NAMES.get(type(value), type(value).__name__)})")
            if f.name in _CHOICES and value not in _CHOICES[f.name]:
                raise ConfigurationError(f"setting {f.name} must be one of {', '.join(_CHOICES[f.name])}, "
                                         f"not {_shown(value)}")
            if not _MINIMUM.get(f.name, value) <= value <= _MAXIMUM.get(f.name, value):
                bound = f"between {_MINIMUM[f.name]} and {_MAXIMUM[f.name]}" if f.name in _MAXIMUM else \
                    f"at least {_MINIMUM[f.name]}"
                raise ConfigurationError(f"setting {f.name} must be {bound}, not {_shown(value)}")

    @classmethod
    def from_json(cls, text: str | None) -> Settings:
        """The settings of the Variable's JSON text (None or empty: every default)."""
        if text is None or not text.strip():
            return cls()
        try:
            values = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigurationError(f"Variable {VARIABLE_NAME} is not valid JSON ({exc.msg} at line {exc.lineno} "
                                     f"column {exc.colno}); fix it or delete it to use the defaults") from None
        return cls.from_mapping(values)

    @classmethod
    def from_mapping(cls, values: Any) -> Settings:
        """The settings of a JSON object: known fields of the exact type, retired ones warned about."""
        if values is None:
            return cls()
        if not isinstance(values, dict):
            raise ConfigurationError(f"Variable {VARIABLE_NAME} must be a JSON object of settings, not "
                                     f"{_TYPE_NAMES.get(type(values), type(values).__name__)} {_shown(values)}")
        values = dict(values)
        for name in sorted(set(values) & set(RETIRED)):
            log.warning("setting %s in %s is no longer used (%s); remove it", name, VARIABLE_NAME, RETIRED[name])
            del values[name]
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigurationError(f"unknown settings {unknown} in Variable {VARIABLE_NAME}; known: {sorted(known)}")
        try:
            return cls(**values)
        except ConfigurationError as exc:
            raise ConfigurationError(f"Variable {VARIABLE_NAME}: {exc}") from None


# How a type reads in an error message (JSON's names: what the person wrote).
_TYPE_NAMES = {int: "an integer", str: "a string", float: "a number with a fraction", bool: "true/false",
               list: "a list", dict: "an object", type(None): "null"}


def _shown(value: Any) -> str:
    """A value as it was written in the Variable's JSON."""
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        return repr(value)
