"""What each command of ``python -m include.album`` does (the parser is ``cli.py``).

The application database is ``--dsn`` / ``$ALBUMS_DB_DSN`` if given, else the Airflow
connection ``albums_db``; Telegram is the connection ``telegram_default``, or ``--archive``.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING

from include.album.admin import channels as channel_admin
from include.album.domain.lifecycle import ChannelState
from include.album.stores import db

if TYPE_CHECKING:
    import psycopg

    from include.album.domain.settings import Settings
    from include.album.source.client import PipelineClient
    from include.album.stores.qdrant import Hit, QdrantIndex


class DatabaseUnreachable(LookupError):
    """The application database does not answer: the message says where it was looked for."""


def application_db(dsn: str | None = None) -> psycopg.Connection:
    """The application database: ``dsn``, else ``$ALBUMS_DB_DSN``, else the connection ``albums_db``."""
    import psycopg

    dsn = dsn or os.environ.get("ALBUMS_DB_DSN")
    source = "--dsn / $ALBUMS_DB_DSN" if dsn else "connection albums_db"
    try:
        if dsn:
            conn = db.connect(dsn)
            conn.autocommit = True
            return conn
        from include.album.orchestration.connections import albums_db

        return albums_db(pipeline_settings())
    except psycopg.OperationalError as exc:
        reason = " ".join(str(exc).split("\n")[0].split())
        raise DatabaseUnreachable(f"cannot reach the application database ({reason}): start Postgres, or point "
                                  f"{source} at it") from None
    except ValueError as exc:
        if "albums_db is not defined" in str(exc) and not dsn:
            raise ValueError(f"{exc}; or give --dsn / $ALBUMS_DB_DSN") from None
        raise


def pipeline_settings() -> Settings:
    """The settings Variable, read quietly (``connections.load_settings``)."""
    from include.album.orchestration.connections import load_settings

    return load_settings(quiet=True)


def _telegram(args: argparse.Namespace) -> PipelineClient:
    if getattr(args, "archive", None):
        from include.album.source.archive import ArchiveTelegramClient

        return ArchiveTelegramClient(args.archive)
    from include.album.orchestration.connections import telegram_client

    return telegram_client(pipeline_settings())


def cmd_migrate(args: argparse.Namespace) -> int:
    with application_db(args.dsn) as conn:
        applied = db.apply_migrations(conn)
    print(f"applied {len(applied)} migration(s): {', '.join(applied) or 'none, schema up to date'}")
    return 0


def cmd_channels_add(args: argparse.Namespace) -> int:
    if args.id is not None:
        if args.access_hash is None or not args.title:
            raise ValueError("--id needs --access-hash and --title (or give a username to resolve once)")
        found = {"channel_id": args.id, "access_hash": args.access_hash, "title": args.title,
                 "username": args.username.lstrip("@") if args.username else None}
    elif args.username:
        async def resolve() -> dict:
            client = _telegram(args)
            await client.open()
            try:
                return await channel_admin.resolve_channel(client, args.username)
            finally:
                await client.close()

        found = asyncio.run(resolve())
    elif args.archive:
        from include.album.source.archive import read_manifest

        with application_db(args.dsn) as conn:
            tenants = {tenant: [int(c["id"]) for c in read_manifest(Path(args.archive))["channels"]]
                       for tenant in args.tenant} if args.tenant else None
            added = channel_admin.register_archive(conn, read_manifest(Path(args.archive)), tenants)
        print(f"{len(added)} channel(s) of {args.archive} added, subscribed by {', '.join(args.tenant or ['default'])}")
        return 0
    else:
        raise ValueError("give a username to resolve, --id/--access-hash/--title, or --archive alone for all "
                         "channels of an archive")
    with application_db(args.dsn) as conn:
        channel_admin.add_channel(conn, **found)
        for tenant in args.tenant or []:
            channel_admin.add_tenant(conn, tenant)
            channel_admin.subscribe(conn, tenant, found["channel_id"])
    print(f"channel {found['channel_id']} (@{found['username']}) added"
          + (f", subscribed by {', '.join(args.tenant)}" if args.tenant else ""))
    return 0


def cmd_channels_list(args: argparse.Namespace) -> int:
    with application_db(args.dsn) as conn:
        rows = channel_admin.list_channels(conn)
        waits = channel_admin.session_waits(conn)
    for row in rows:
        flood = f" flood_wait_until={row['flood_wait_until'].isoformat()}" if row["flood_wait_until"] else ""
        newest = "?" if row["top_message"] is None else row["top_message"]
        outside = " (outside the dialogs)" if row["in_dialogs"] is False else ""
        print(f"{row['id']:>14}  @{row['username'] or '-':<20} active={row['is_active']!s:<5} "
              f"hwm={row['hwm']:<8} newest={newest!s:<8}{outside} tenants={','.join(row['tenants']) or '-'}{flood}  "
              f"{row['title']}")
        if row["state"] != ChannelState.ACTIVE:
            print(f"{'':>16}{row['state']} since {row['state_since'].isoformat()} ({row['state_reason']}): skipped "
                  f"until its re-check; `channels enable {row['id']}` once the account can read it")
        if row["last_error"]:
            print(f"{'':>16}last pull failed {row['last_error_at'].isoformat()} ({row['failures']} in a row): "
                  f"{row['last_error']}")
        if row["media_waiting"]:
            print(f"{'':>16}{row['media_waiting']} media to fetch again, next try after "
                  f"{row['media_next_try'].isoformat(timespec='seconds')} (up to {row['media_tries']} failed tries "
                  f"so far; last: {row['media_last_error']})")
        history = channel_admin.history_line(row)
        if history:
            print(f"{'':>16}{history}")
        if row["media_given_up"]:
            print(f"{'':>16}{row['media_given_up']} media given up (`ingest_skips` reasons download_failed, "
                  "media_gone say why)")
    for wait in waits:
        print(f"session of {wait['conn_id']}: Telegram asked for a wait ({wait['error']}) before "
              f"{wait['request']} until {wait['until'].isoformat(timespec='seconds')}; no run asks before then")
    return 0


def cmd_channels_remove(args: argparse.Namespace) -> int:
    with application_db(args.dsn) as conn:
        channel_admin.deactivate_channel(conn, channel_admin.channel_id_of(conn, args.channel))
    print(f"channel {args.channel} deactivated (history kept)")
    return 0


def cmd_channels_enable(args: argparse.Namespace) -> int:
    with application_db(args.dsn) as conn:
        enabled = channel_admin.enable_channel(conn, channel_admin.channel_id_of(conn, args.channel))
    if enabled:
        print(f"channel {args.channel} enabled: the next run asks Telegram for it")
    else:
        print(f"channel {args.channel} was not set aside: nothing changed")
    return 0


def cmd_tenants_add(args: argparse.Namespace) -> int:
    with application_db(args.dsn) as conn:
        channel_admin.add_tenant(conn, args.tenant_id, args.name)
    print(f"tenant {args.tenant_id} added")
    return 0


def cmd_subscribe(args: argparse.Namespace) -> int:
    with application_db(args.dsn) as conn:
        channel_admin.require_tenant(conn, args.tenant_id)
        channel_admin.subscribe(conn, args.tenant_id, channel_admin.channel_id_of(conn, args.channel))
    print(f"tenant {args.tenant_id} subscribes to channel {args.channel}")
    return 0


def cmd_unsubscribe(args: argparse.Namespace) -> int:
    with application_db(args.dsn) as conn:
        channel_admin.require_tenant(conn, args.tenant_id)
        removed = channel_admin.unsubscribe(conn, args.tenant_id, channel_admin.channel_id_of(conn, args.channel))
    if removed:
        print(f"tenant {args.tenant_id} unsubscribed from channel {args.channel}")
    else:
        print(f"tenant {args.tenant_id} was not subscribed to channel {args.channel}: nothing changed")
    return 0


def cmd_record(args: argparse.Namespace) -> int:
    from include.album.source.record import record

    async def go() -> dict[int, int]:
        client = _telegram(args)
        await client.open()
        try:
            return await record(client, args.channels, Path(args.out), limit=args.limit)
        finally:
            await client.close()

    counts = asyncio.run(go())
    print(f"recorded {sum(counts.values())} messages of {len(counts)} channel(s) into {args.out}")
    return 0


def cmd_login(args: argparse.Namespace) -> int:
    """Log in to Telegram with ``$TELEGRAM_API_ID`` / ``$TELEGRAM_API_HASH``, each asked for when
    unset (the hash without echo), and print the session string."""
    from include.album.source import record

    api_id = _api_id(os.environ.get("TELEGRAM_API_ID") or input("api_id: "))
    api_hash = (os.environ.get("TELEGRAM_API_HASH") or getpass.getpass("api_hash: ")).strip()
    if not api_hash:
        raise ValueError("api_hash is empty: set $TELEGRAM_API_HASH or type the one my.telegram.org shows")
    session = record.login(api_id, api_hash)
    print(f"\nSession string (a credential: store it only in the {args.conn_id} connection, extra "
          '"session"; never in the repo, a log or a ticket):\n')
    print(session)
    return 0


def _api_id(given: str) -> int:
    if not given.strip().isdecimal():
        raise ValueError(f"api_id must be the number my.telegram.org shows (got {given!r})")
    return int(given)


def _search_index(args: argparse.Namespace) -> AbstractContextManager[QdrantIndex]:
    from include.album.orchestration.connections import search_index

    return search_index(pipeline_settings(), path=args.qdrant_path, collection=args.collection)


def _print_hits(hits: list[Hit]) -> None:
    """One line a hit: score, album, where it is (``post @channel/message #position``), date, text."""
    for hit in hits:
        album = f"album {hit.album_id}" if hit.album_id is not None else "no album"
        where = f"{hit.kind} " + (f"@{hit.channel_username}" if hit.channel_username else str(hit.channel_id))
        if hit.message_id:
            where += f"/{hit.message_id}"
        if hit.position is not None:
            where += f" #{hit.position}"
        text = " ".join(hit.text.split())[:100] or "(no text)"
        score = "     -" if hit.score is None else f"{hit.score:6.3f}"
        print(f"{score}  {album:<10} {where:<24} {hit.posted_at[:16]}  {text}")


def _scope(args: argparse.Namespace) -> int | None:
    """Check ``--tenant`` (and resolve ``--channel``) against the application database."""
    with application_db(args.dsn) as conn:
        channel_admin.require_tenant(conn, args.tenant)
        return channel_admin.channel_id_of(conn, args.channel) if getattr(args, "channel", None) else None


def cmd_search(args: argparse.Namespace) -> int:
    """Hybrid search within a tenant; prints score, album id, channel, date and text."""
    if not args.query.strip():
        raise ValueError("empty query: give the words to search for")
    channel_id = _scope(args)
    with _search_index(args) as index:
        hits = index.search(args.tenant, args.query, album_id=args.album, kind="album" if args.albums_only else None,
                            outside_albums=args.outside_albums, labels=args.labels, channel_id=channel_id,
                            limit=args.limit)
    _print_hits(hits)
    if not hits:
        print(f"no results: nothing in tenant {args.tenant} holds these words or means this closely enough "
              f"(score floor {index.embedder.score_floor})")
    return 0


def cmd_browse(args: argparse.Namespace) -> int:
    """Points of a tenant by album, labels, channel or kind, without a query: albums and posts
    with no text are found too. Newest first; an album's own: its point, then its posts in order."""
    channel_id = _scope(args)
    with _search_index(args) as index:
        hits = index.browse(args.tenant, album_id=args.album, kind=args.kind, labels=args.labels,
                            channel_id=channel_id, limit=args.limit)
    _print_hits(hits)
    if not hits:
        print(f"nothing in tenant {args.tenant} matches these filters")
    return 0


def cmd_quarantine_list(args: argparse.Namespace) -> int:
    from include.album.steps.quarantine import quarantined

    with application_db(args.dsn) as conn:
        rows = quarantined(conn)
    if not rows:
        print("no quarantined albums")
    for row in rows:
        state = "" if row["current"] else " (composition changed since: the next run retries it anyway)"
        print(f"album {row['album_id']} @{row['username'] or row['channel_id']} grouped_id {row['grouped_id']}: "
              f"{row['step']} failed {row['attempts']}x since {row['first_failed_at']:%Y-%m-%d %H:%M}, "
              f"quarantined {row['quarantined_at']:%Y-%m-%d %H:%M}{state}\n    {row['error']}")
    return 0


def cmd_quarantine_requeue(args: argparse.Namespace) -> int:
    from include.album.steps.quarantine import requeue

    if not args.all and not args.album_ids:
        raise ValueError("give the album ids to re-queue, or --all")
    if args.all and args.album_ids:
        raise ValueError("give album ids or --all, not both")
    with application_db(args.dsn) as conn:
        released = requeue(conn, None if args.all else args.album_ids)
    if args.all and not released:
        print("no quarantined albums")
        return 0
    missing = [album_id for album_id in dict.fromkeys(args.album_ids) if album_id not in released]
    if missing and not released:
        raise LookupError(_not_quarantined(missing))
    print(f"re-queued {len(released)} album(s): {', '.join(map(str, released))}; "
          "the next run of telegram_albums processes them")
    if missing:
        print(_not_quarantined(missing))
    return 0


def _not_quarantined(album_ids: list[int]) -> str:
    which = (f"album {album_ids[0]} is not quarantined" if len(album_ids) == 1 else
             f"albums {', '.join(map(str, album_ids))} are not quarantined")
    return f"{which}: `python -m include.album quarantine list` shows the quarantined albums"


def cmd_reindex(args: argparse.Namespace) -> int:
    """Rebuild a collection's points (and the graph's albums) from Postgres and S3."""
    from include.album.orchestration.connections import media_store, open_indexer, vision_provider
    from include.album.steps.reindex import reindex

    settings = pipeline_settings()
    collection = args.collection or settings.qdrant_collection
    with application_db(args.dsn) as conn:
        if args.tenant:
            channel_admin.require_tenant(conn, args.tenant)
        provider = vision_provider(settings)
        with open_indexer(conn, settings, provider.key, collection=collection, qdrant_path=args.qdrant_path) \
                as indexer:
            reindex(conn, media_store(settings), provider, indexer, tenant=args.tenant, full=args.full,
                    progress=print)
    if collection != settings.qdrant_collection:
        print(f"the DAG writes {settings.qdrant_collection}: to switch it, set qdrant_collection to {collection} in "
              "Variable telegram_albums_settings, then run this command once more to catch up (docs/search.md)")
    return 0
