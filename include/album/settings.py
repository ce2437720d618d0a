"""One settings object for the pipeline, with documented defaults.

In Airflow the values come from the JSON Variable ``telegram_albums_settings`` (any
subset of the fields below); the CLI and tests build ``Settings`` directly.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

VARIABLE_NAME = "telegram_albums_settings"


@dataclass(frozen=True)
class Settings:
    # Connections (ids of Airflow connections).
    albums_db_conn_id: str = "albums_db"          # Postgres application database
    s3_conn_id: str = "albums_s3"                  # S3/MinIO (extra endpoint_url for MinIO/moto)
    telegram_conn_id: str = "telegram_default"     # login=api_id, password=api_hash, extra session|archive
    # Storage.
    s3_bucket: str = "telegram-albums"
    # Ingestion.
    media_size_cap_bytes: int = 40 * 1024 * 1024  # larger media are recorded as skipped, not fetched
    max_messages_per_pull: int = 1000             # per channel per run; the mark catches up next run
    flood_sleep_threshold_seconds: int = 60       # shorter FloodWaits are slept, longer defer the channel

    @classmethod
    def from_mapping(cls, values: dict[str, Any] | None) -> Settings:
        values = dict(values or {})
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ValueError(f"unknown settings {unknown} in {VARIABLE_NAME}; known: {sorted(known)}")
        converted = {}
        for name, value in values.items():
            default = known[name].default
            converted[name] = type(default)(value) if default is not None else value
        return cls(**converted)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
