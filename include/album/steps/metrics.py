"""The pipeline's own metrics, which the steps emit and Airflow's StatsD client sends.

Every metric is declared once in ``METRICS``; ``monitoring/statsd/mapping.yml`` turns the
StatsD names into the Prometheus names (the six of the system this project replaces keep theirs) and the tests check
the mapping against this table. Labels are low-cardinality values carried in the name
(``telegram_albums.albums_parsed.ok``) so they survive plain StatsD, which drops tags.
Never an album, message or channel id in a name.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

log = logging.getLogger(__name__)

PREFIX = "telegram_albums"


@dataclass(frozen=True)
class Metric:
    name: str  # StatsD name after Airflow's prefix, without the label part
    kind: str  # counter | gauge | histogram
    prometheus: str
    help: str
    label: str | None = None  # the one label carried as the last name component
    values: tuple[str, ...] = ()  # its allowed values (bounded)
    buckets: tuple[float, ...] = ()  # in the Prometheus metric's own unit


METRICS = {m.prometheus: m for m in (
    Metric(f"{PREFIX}.albums_parsed", "counter", "albums_parsed_total",
           "Albums new or changed by ingestion", "status", ("ok", "error")),
    Metric(f"{PREFIX}.albums_assembled", "counter", "albums_assembled_total",
           "Album assemblies (partial = assembled after the timeout with items missing)", "status",
           ("ok", "partial", "error")),
    Metric(f"{PREFIX}.album_assembly_lag", "histogram", "album_assembly_lag_seconds",
           "From the album's first post to its assembly", buckets=(1, 5, 10, 30, 60, 300, 600, 1800, 3600)),
    Metric(f"{PREFIX}.album_items_count", "gauge", "album_items_count_gauge",
           "Albums by status, counted in Postgres by the report task", "status", ("pending", "assembled", "partial")),
    Metric(f"{PREFIX}.album_pending_oldest_age", "gauge", "album_pending_oldest_age_seconds",
           "Age of the oldest album not assembled for its current composition (0 when none)"),
    Metric(f"{PREFIX}.album_vision_summary_size", "histogram", "album_vision_summary_size_bytes",
           "Size of the album summary JSON written to S3", buckets=(100, 500, 1000, 5000, 10000, 50000, 100000)),
    Metric(f"{PREFIX}.album_aggregation_duration", "histogram", "album_aggregation_duration_ms",
           "Time spent aggregating item results into the album summary (aggregation only)",
           buckets=(1, 5, 10, 50, 100, 500, 1000, 5000)),
    Metric(f"{PREFIX}.messages_pulled", "counter", "telegram_messages_pulled_total",
           "Telegram messages pulled by ingestion"),
    Metric(f"{PREFIX}.media_stored_bytes", "counter", "telegram_media_stored_bytes_total",
           "Bytes of media fetched and stored in S3"),
    Metric(f"{PREFIX}.flood_waits", "counter", "telegram_flood_waits_total",
           "Waits Telegram asked for that deferred a channel or the session (downloads, the change check)"),
    Metric(f"{PREFIX}.telegram_requests", "counter", "telegram_requests_total",
           "Requests made to Telegram, by type (file downloads are get_file)", "method",
           ("get_peer_dialogs", "get_history", "get_messages", "get_file", "get_state", "resolve_username",
            "get_channels", "get_users", "get_difference", "get_channel_difference", "other")),
    Metric(f"{PREFIX}.listener_hints", "counter", "telegram_listener_hints_total",
           "Channels the updates listener heard post (each wakes telegram_albums for them)"),
    Metric(f"{PREFIX}.history_messages_imported", "counter", "history_messages_imported_total",
           "Messages stored by history runs (telegram_albums_history), the days' and what their pages brought"),
    Metric(f"{PREFIX}.channel_failures", "counter", "telegram_channel_failures_total",
           "Channel pulls that failed for the channel's own sake (recorded on the channel, retried next run)"),
    Metric(f"{PREFIX}.channels_failing", "gauge", "telegram_channels_failing",
           "Channels whose last pull failed, counted in Postgres by the report task"),
    Metric(f"{PREFIX}.channel_unavailable", "counter", "telegram_channels_unavailable_total",
           "Channels Telegram refused to the account (set aside until re-checked), by Telegram's error", "reason",
           ("channel_private", "channel_invalid", "channel_banned", "user_banned_in_channel", "other")),
    Metric(f"{PREFIX}.channels_unavailable", "gauge", "telegram_channels_unavailable",
           "Channels set aside because Telegram refuses them, counted in Postgres by the report task"),
    Metric(f"{PREFIX}.session_unusable", "counter", "telegram_session_unusable_total",
           "Tasks failed because Telegram refused the session (make a new one with login), by error", "reason",
           ("auth_key_unregistered", "session_revoked", "auth_key_duplicated", "user_deactivated", "session_expired",
            "unauthorized", "other")),
    Metric(f"{PREFIX}.file_reference_refetches", "counter", "telegram_file_reference_refetches_total",
           "Downloads whose file reference had expired: recovered by fetching the message again, or skipped "
           "(fetched again by a later run)", "outcome", ("recovered", "skipped")),
    Metric(f"{PREFIX}.media_retries", "counter", "telegram_media_retries_total",
           "Media left to fetch again by a later run (wait: Telegram asked for one; error: a try failed with an "
           "error that may pass), and media stored after such a retry", "outcome", ("wait", "error", "stored")),
    Metric(f"{PREFIX}.media_to_refetch", "gauge", "telegram_media_to_refetch",
           "Media and previews a later run fetches again (media_retries), counted by the report task"),
    Metric(f"{PREFIX}.server_errors", "counter", "telegram_server_errors_total",
           "Telegram 5xx answers and timeouts left after Telethon's retries (the channel waits for the next run)",
           "reason", ("rpc_call_fail", "timeout", "other")),
    Metric(f"{PREFIX}.channel_renames", "counter", "telegram_channel_renames_total",
           "Channels whose username or title changed on Telegram (the table and the graph follow)"),
    Metric(f"{PREFIX}.ingest_skips", "counter", "telegram_ingest_skips_total",
           "Messages or media not stored, by reason", "reason",
           ("service_message", "unsupported_media", "media_unavailable", "media_too_large", "media_gone",
            "download_failed", "thumbnail_failed", "corrupt_archive_line", "text_nul_replaced", "invalid_mime_type",
            "other")),
    Metric(f"{PREFIX}.vision_calls", "counter", "album_vision_calls_total",
           "Images analysed (cache misses)", "outcome", ("ok", "skipped", "pending")),
    Metric(f"{PREFIX}.deadline_missed", "counter", "telegram_albums_deadline_missed_total",
           "telegram_albums runs still unfinished at their deadline"),
    Metric(f"{PREFIX}.album_failures", "counter", "album_step_failures_total",
           "Failed tries of an album step (quarantined = the album failed every try and was set aside)",
           "outcome", ("retried", "quarantined")),
    Metric(f"{PREFIX}.albums_quarantined", "gauge", "albums_quarantined",
           "Albums quarantined for their current composition (re-queue with the quarantine CLI)"),
    Metric(f"{PREFIX}.refresh_changes", "counter", "telegram_refresh_changes_total",
           "Messages found edited or deleted by the refresh DAG", "kind", ("edited", "deleted")),
    Metric(f"{PREFIX}.reconcile_drift", "counter", "reconcile_drift_total",
           "Differences between Postgres and S3/Qdrant/graph found by reconciliation", "kind",
           ("s3_summary_missing", "media_missing", "qdrant_missing", "qdrant_orphan", "graph_missing",
            "graph_orphan")),
)}


class Client(Protocol):
    """Where metrics go: Airflow's StatsD client (``airflow.sdk.observability.stats``)."""

    def incr(self, stat: str, count: int = 1) -> None: ...
    def gauge(self, stat: str, value: float) -> None: ...
    def timing(self, stat: str, dt: float) -> None: ...


_client: Client | None = None


def send_to(client: Client) -> None:
    """Send the metrics through ``client``; the orchestration layer passes Airflow's.

    Until then (the plain-Python pipeline: CLI, benchmarks) they are only logged at debug level.
    """
    global _client
    _client = client


def _name(metric: Metric, label: str | None) -> str:
    if metric.label is None:
        return metric.name
    value = label if label in metric.values else "other" if "other" in metric.values else None
    if value is None:
        raise ValueError(f"{metric.prometheus}: {metric.label}={label!r} is not one of {metric.values}")
    return f"{metric.name}.{value}"


def incr(prometheus: str, count: int = 1, label: str | None = None) -> None:
    _send("incr", _name(METRICS[prometheus], label), count)


def gauge(prometheus: str, value: float, label: str | None = None) -> None:
    _send("gauge", _name(METRICS[prometheus], label), value)


def observe(prometheus: str, value: float) -> None:
    """One observation of a histogram, in the unit its Prometheus name says (seconds, bytes, ms).

    Airflow's client sends histograms as StatsD timers, whose values statsd_exporter divides
    by 1000 (ms -> s); sending ``value * 1000`` makes Prometheus receive ``value`` itself.
    """
    _send("timing", METRICS[prometheus].name, value * 1000.0)


def _send(method: str, name: str, value: float) -> None:
    if _client is None:
        log.debug("metrics off: %s %s %s", method, name, value)
    else:
        getattr(_client, method)(name, value)
