"""Settings from the Airflow Variable, clients from Airflow connections (via provider hooks).

Everything below this layer takes plain clients, so it runs and is tested without Airflow.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from include.album.domain.settings import VARIABLE_NAME, ConfigurationError, Settings
from include.album.stores.media import MediaStore

if TYPE_CHECKING:
    import psycopg
    from airflow.sdk import Connection
    from qdrant_client import QdrantClient
    from redis import Redis

    from include.album.providers.embeddings import Embedder
    from include.album.providers.vision import VisionProvider
    from include.album.source.client import PipelineClient
    from include.album.steps.indexing import AlbumIndexer
    from include.album.stores.graph import GraphBackend
    from include.album.stores.qdrant import QdrantIndex

log = logging.getLogger(__name__)


def mask_secrets(*secrets: str | None) -> None:
    """Have Airflow print ``***`` for these values in task logs and the UI.

    Airflow masks a connection's password and extras with sensitive names (key, token, ...)
    by itself; the Telegram session string lives in the extra ``session``, which it does not.
    """
    from airflow.sdk.log import mask_secret

    for secret in secrets:
        if secret:
            mask_secret(secret)


def load_settings(*, quiet: bool = False) -> Settings:
    """The Variable ``telegram_albums_settings``, validated strictly (``ConfigurationError``).
    ``quiet`` (the CLI): without Airflow's warning on stdout that a value this short (``{}``)
    cannot be masked; Airflow masks every Variable it reads, and this one holds no secret."""
    from airflow.sdk import Variable

    if quiet:
        from airflow.sdk._shared.secrets_masker.secrets_masker import SecretsMasker

        SecretsMasker._has_warned_short_secret = True  # Airflow's own warn-once flag (3.x)
    return Settings.from_json(Variable.get(VARIABLE_NAME, default=None))


@contextmanager
def defined(conn_id: str) -> Iterator[None]:
    """A connection that is not defined is a ``ConfigurationError`` naming it and where it is set."""
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        yield
    except AirflowNotFoundException:
        raise ConfigurationError(
            f"connection {conn_id} is not defined: set it in the Airflow UI (Admin > Connections) or as env "
            f"AIRFLOW_CONN_{conn_id.upper()} (README \"Configuration\", table of connections)") from None


def get_connection(conn_id: str) -> Connection:
    from airflow.sdk import BaseHook

    with defined(conn_id):
        return BaseHook.get_connection(conn_id)


def albums_db(settings: Settings) -> psycopg.Connection:
    """An autocommit psycopg 3 connection; callers open explicit transactions."""
    from airflow.providers.postgres.hooks.postgres import PostgresHook

    with defined(settings.albums_db_conn_id):
        conn = PostgresHook(postgres_conn_id=settings.albums_db_conn_id).get_conn()
    conn.autocommit = True
    return conn


def media_store(settings: Settings) -> MediaStore:
    connection = get_connection(settings.s3_conn_id)
    return MediaStore(_s3_client(settings.s3_conn_id, connection.get_uri()), settings.s3_bucket)


@lru_cache(maxsize=4)
def _s3_client(conn_id: str, uri: str) -> Any:
    """One boto3 client per connection and process: building one loads botocore's S3 model
    (~0.25 s), which every task running in the process (dag.test, a worker) would pay again.
    ``uri`` is part of the key only, so an edited connection gets a new client."""
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    return S3Hook(aws_conn_id=conn_id).get_conn()


def make_client(*, api_id: str | int | None, api_hash: str | None, extra: dict[str, Any],
                as_of: datetime | None = None, flood_sleep_threshold: int = 60,
                conn_id: str = "telegram_default", listening: bool = False) -> PipelineClient:
    """Client for a Telegram connection (login=api_id, password=api_hash): ``telegram_default``,
    or with ``listening`` the updates listener's (``source.updates``; its own session).

    Extra ``archive`` (a path) selects the archive transport (with extra ``faults``: Telegram's
    errors to inject, see ``archive.Fault``); otherwise extra ``session`` must hold a
    ``StringSession`` made once with ``python -m include.album login``.
    """
    from include.album.source.client import REQUEST_RETRIES, PipelineClient
    from include.album.source.updates import UpdatesClient

    if extra.get("archive"):
        from include.album.source.archive import ArchiveTelegramClient, Fault

        try:
            faults = [Fault.from_mapping(f) for f in extra.get("faults") or ()]
        except (TypeError, ValueError) as exc:
            raise ConfigurationError(f"connection {conn_id}: extra.faults: {exc}") from None
        not_joined = {int(c) for c in extra.get("not_joined") or ()}
        if listening:
            from include.album.source.archive_updates import ArchiveUpdatesClient

            return ArchiveUpdatesClient(Path(extra["archive"]), faults=faults, not_joined=not_joined, conn_id=conn_id,
                                        flood_sleep_threshold=flood_sleep_threshold)
        return ArchiveTelegramClient(Path(extra["archive"]), as_of=as_of, faults=faults, not_joined=not_joined,
                                     flood_sleep_threshold=flood_sleep_threshold, conn_id=conn_id)
    session = extra.get("session")
    if not session or not api_id or not api_hash:
        raise ConfigurationError(
            f"connection {conn_id} needs login=api_id, password=api_hash and extra.session "
            "(run `python -m include.album login` once to create the session string), "
            "or extra.archive=<path> for the offline archive transport (README \"Configuration\")"
        )
    # Bounded: a request is retried REQUEST_RETRIES times (Telegram's 5xx and timeouts; then the
    # last error is raised), a lost connection re-established 5 times, each attempt times out
    # after 30 s; then the channel is left for the next run, or the task fails and retries.
    from telethon.sessions import StringSession

    # The listener hears updates (Telethon's update loop, no catch-up at connect: the cron run
    # does that); the tasks never do.
    kind, updates = (UpdatesClient, {"sequential_updates": True}) if listening else (PipelineClient, {
        "receive_updates": False})
    return kind(StringSession(session), int(api_id), api_hash, conn_id=conn_id,
                flood_sleep_threshold=flood_sleep_threshold, request_retries=REQUEST_RETRIES,
                raise_last_call_error=True, connection_retries=5, retry_delay=2, timeout=30, **updates)


def telegram_client(settings: Settings, *, run_end: datetime | None = None) -> PipelineClient:
    """The Telethon client of the ``telegram_default`` connection.

    With the archive transport, extra ``replay: true`` shows each run the channel as it was
    at the end of the run's data interval (late album items appear in a later run).
    """
    connection = get_connection(settings.telegram_conn_id)
    extra = connection.extra_dejson
    mask_secrets(extra.get("session"), connection.password)
    as_of = run_end if extra.get("archive") and extra.get("replay") else None
    return make_client(api_id=connection.login, api_hash=connection.password, extra=extra, as_of=as_of,
                       flood_sleep_threshold=settings.flood_sleep_threshold_seconds, conn_id=settings.telegram_conn_id)


@lru_cache(maxsize=16)
def _say_once(level: int, message: str) -> None:
    log.log(level, message)


@contextmanager
def search_index(settings: Settings, *, path: str | None = None, collection: str | None = None
                 ) -> Iterator[QdrantIndex]:
    """The tenant-scoped index the DAG wrote: a Qdrant local-mode ``path``, else connection
    ``albums_qdrant``; one that does not exist is a ``LookupError``, never created empty by a reader."""
    from include.album.stores.qdrant import QdrantIndex

    if path and not Path(path).is_dir():  # (QdrantClient would create it, empty)
        raise LookupError(f"--qdrant-path {path} does not exist: give the Qdrant local-mode directory the DAG "
                          "writes (connection albums_qdrant, extra path)")
    client = _qdrant_at(settings, path)
    try:
        index = QdrantIndex(client, collection or settings.qdrant_collection, embedder(settings))
        index.require_collection()
        yield index
    finally:
        client.close()


@contextmanager
def open_indexer(conn: psycopg.Connection, settings: Settings, provider_key: str, *, collection: str | None = None,
                 qdrant_path: str | None = None) -> Iterator[AlbumIndexer]:
    """Qdrant (the settings' collection, or ``collection``; connection ``albums_qdrant``, or the
    local-mode ``qdrant_path``) and the graph, for one task or command; closed at the end
    (Qdrant local mode holds a file lock)."""
    from include.album.steps.indexing import AlbumIndexer
    from include.album.stores.qdrant import QdrantIndex

    client, graph = _qdrant_at(settings, qdrant_path), graph_backend(settings)
    try:
        qindex = QdrantIndex(client, collection or settings.qdrant_collection, embedder(settings))
        qindex.ensure_collection()
        if graph is not None:
            graph.ensure_schema()
        yield AlbumIndexer(conn, qindex, graph, provider_key)
    finally:
        client.close()
        if graph is not None:
            graph.close()


def _qdrant_at(settings: Settings, path: str | None) -> QdrantClient:
    if path:
        from qdrant_client import QdrantClient

        return QdrantClient(path=path)
    return qdrant_client(settings)


def redis_client(settings: Settings) -> Redis | None:
    """The Redis client of ``albums_redis``, or None if there is none. Redis is optional (Postgres
    decides what is new): a connection that is not defined is said once per process at INFO, one
    that is defined but unusable once per process as a warning."""
    from airflow.providers.redis.hooks.redis import RedisHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        client = RedisHook(redis_conn_id=settings.redis_conn_id).get_conn()
    except AirflowNotFoundException:
        _say_once(logging.INFO, f"connection {settings.redis_conn_id} is not defined: running without the "
                                "album_seen hints (Redis is optional; Postgres decides what is new)")
        return None
    except Exception as exc:  # noqa: BLE001 - Redis is optional: Postgres is the source of truth
        _say_once(logging.WARNING, f"Redis connection {settings.redis_conn_id} unusable ({exc}); running "
                                   "without album_seen")
        return None
    # A hint cache must never stall a task: no retries (redis-py's default backs off for ~3.5 s
    # per call), 2-s timeouts; on the first failure AlbumSeen stops writing hints (Postgres decides anyway).
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    client.connection_pool.connection_kwargs.update(socket_timeout=2, socket_connect_timeout=2)
    client.set_retry(Retry(NoBackoff(), 0))
    return client


def openai_endpoint(conn_id: str) -> tuple[str, str, str | None, dict]:
    """(base URL, model, API key, extra) of an OpenAI-compatible endpoint's connection."""
    connection = get_connection(conn_id)
    extra = connection.extra_dejson
    base_url = connection_url(connection, "base_url")
    if not base_url or not extra.get("model"):
        raise ConfigurationError(f"connection {conn_id} needs extra.base_url (or host) and extra.model "
                                 "(README \"Configuration\", table of connections)")
    return base_url, extra["model"], connection.password, extra


def connection_url(connection: Connection, extra_key: str) -> str | None:
    """``extra[extra_key]``, else ``host[:port]``; https unless the URL or the connection's schema says."""
    url = connection.extra_dejson.get(extra_key)
    if not url and connection.host:
        url = f"{connection.host}:{connection.port}" if connection.port else connection.host
    if url and "://" not in url:
        url = f"{connection.schema or 'https'}://{url}"
    return url or None


def vision_provider(settings: Settings) -> VisionProvider:
    """The configured vision provider; ``openai`` reads base URL, key and model from its connection."""
    from include.album.providers.vision import LocalVision, OpenAIVision

    if settings.vision_provider == "local":
        return LocalVision()
    base_url, model, api_key, extra = openai_endpoint(settings.vision_conn_id)
    return OpenAIVision(base_url, model, api_key=api_key, timeout=float(extra.get("timeout", 30)))


def embedder(settings: Settings) -> Embedder:
    from include.album.providers.embeddings import OpenAIEmbedder, default_embedder

    if settings.embedding_provider == "local":
        return default_embedder()
    base_url, model, api_key, extra = openai_endpoint(settings.embedding_conn_id)
    return OpenAIEmbedder(base_url, model, api_key=api_key, dim=extra.get("dim"),
                          score_floor=float(extra.get("score_floor", 0.0)))


def qdrant_client(settings: Settings) -> QdrantClient:
    """Local mode when the connection's extra has ``path``; otherwise the provider's QdrantHook."""
    extra = get_connection(settings.qdrant_conn_id).extra_dejson
    if extra.get("path"):
        from qdrant_client import QdrantClient

        return QdrantClient(path=extra["path"])
    from airflow.providers.qdrant.hooks.qdrant import QdrantHook

    return QdrantHook(conn_id=settings.qdrant_conn_id).get_conn()


def graph_backend(settings: Settings) -> GraphBackend | None:
    """Neo4j (conn_type neo4j, via Neo4jHook) or FalkorDB (conn_type falkordb); None if not configured."""
    from include.album.stores.graph import FalkorGraph, Neo4jGraph

    try:
        connection = get_connection(settings.graph_conn_id)
    except ConfigurationError:  # the graph is optional
        log.warning("graph connection %s is not defined; albums are not written to a graph", settings.graph_conn_id)
        return None
    extra = connection.extra_dejson
    if connection.conn_type == "neo4j":
        from airflow.providers.neo4j.hooks.neo4j import Neo4jHook

        return Neo4jGraph(Neo4jHook(conn_id=settings.graph_conn_id).get_conn(), database=connection.schema or None)
    from falkordb import FalkorDB

    return FalkorGraph(FalkorDB(host=connection.host or "127.0.0.1", port=connection.port or 6379,
                                password=connection.password or None), extra.get("graph", "telegram_albums"))
