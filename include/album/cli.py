"""Command line: ``python -m include.album ...`` (or the ``telegram-albums`` entry point).

The application database is ``--dsn`` / ``$ALBUMS_DB_DSN`` if given, else the Airflow
connection ``albums_db``; Telegram is the connection ``telegram_default``.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import os
import sys
from pathlib import Path
from typing import Any

from include.album import channels as channel_admin
from include.album import db


def _connect(args: argparse.Namespace) -> Any:
    dsn = args.dsn or os.environ.get("ALBUMS_DB_DSN")
    if dsn:
        conn = db.connect(dsn)
        conn.autocommit = True
        return conn
    from include.album.connections import albums_db, load_settings

    return albums_db(load_settings())


def _telegram(args: argparse.Namespace) -> Any:
    if getattr(args, "archive", None):
        from include.album.archive import ArchiveTelegramClient

        return ArchiveTelegramClient(args.archive)
    from include.album.connections import load_settings, telegram_client

    return telegram_client(load_settings())


def cmd_migrate(args: argparse.Namespace) -> int:
    with _connect(args) as conn:
        applied = db.migrate(conn)
    print(f"applied {len(applied)} migration(s): {', '.join(applied) or 'none, schema up to date'}")
    return 0


def cmd_channels_add(args: argparse.Namespace) -> int:
    if args.id is not None:
        if args.access_hash is None or not args.title:
            raise SystemExit("--id needs --access-hash and --title (or give a username to resolve once)")
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
        from include.album.archive import read_manifest

        with _connect(args) as conn:
            tenants = {tenant: [int(c["id"]) for c in read_manifest(Path(args.archive))["channels"]]
                       for tenant in args.tenant} if args.tenant else None
            added = channel_admin.register_archive(conn, read_manifest(Path(args.archive)), tenants)
        print(f"{len(added)} channel(s) of {args.archive} added, subscribed by {', '.join(args.tenant or ['default'])}")
        return 0
    else:
        raise SystemExit("give a username to resolve, --id/--access-hash/--title, or --archive alone for all "
                         "channels of an archive")
    with _connect(args) as conn:
        channel_admin.add_channel(conn, **found)
        for tenant in args.tenant or []:
            channel_admin.add_tenant(conn, tenant)
            channel_admin.subscribe(conn, tenant, found["channel_id"])
    print(f"channel {found['channel_id']} (@{found['username']}) added"
          + (f", subscribed by {', '.join(args.tenant)}" if args.tenant else ""))
    return 0


def cmd_channels_list(args: argparse.Namespace) -> int:
    with _connect(args) as conn:
        rows = channel_admin.list_channels(conn)
    for row in rows:
        flood = f" flood_wait_until={row['flood_wait_until'].isoformat()}" if row["flood_wait_until"] else ""
        newest = "?" if row["top_message"] is None else row["top_message"]
        outside = " (outside the dialogs)" if row["in_dialogs"] is False else ""
        print(f"{row['id']:>14}  @{row['username'] or '-':<20} active={row['is_active']!s:<5} "
              f"hwm={row['hwm']:<8} newest={newest!s:<8}{outside} tenants={','.join(row['tenants']) or '-'}{flood}  "
              f"{row['title']}")
        if row["last_error"]:
            print(f"{'':>16}last pull failed {row['last_error_at'].isoformat()} ({row['failures']} in a row): "
                  f"{row['last_error']}")
    return 0


def cmd_channels_remove(args: argparse.Namespace) -> int:
    with _connect(args) as conn:
        found = channel_admin.deactivate_channel(conn, args.channel_id)
    print(f"channel {args.channel_id} {'deactivated (history kept)' if found else 'not found'}")
    return 0 if found else 1


def cmd_tenants_add(args: argparse.Namespace) -> int:
    with _connect(args) as conn:
        channel_admin.add_tenant(conn, args.tenant_id, args.name)
    print(f"tenant {args.tenant_id} added")
    return 0


def cmd_subscribe(args: argparse.Namespace) -> int:
    with _connect(args) as conn:
        channel_admin.subscribe(conn, args.tenant_id, args.channel_id)
    print(f"tenant {args.tenant_id} subscribes to channel {args.channel_id}")
    return 0


def cmd_unsubscribe(args: argparse.Namespace) -> int:
    with _connect(args) as conn:
        found = channel_admin.unsubscribe(conn, args.tenant_id, args.channel_id)
    print(f"tenant {args.tenant_id} {'unsubscribed from' if found else 'was not subscribed to'} "
          f"channel {args.channel_id}")
    return 0 if found else 1


def cmd_sample(args: argparse.Namespace) -> int:
    from include.album.sample import build_sample_archive

    expected = build_sample_archive(args.path)
    if args.register:
        with _connect(args) as conn:
            channel_admin.register_sample(conn, expected)
    print(f"sample archive written to {args.path}: {len(expected['channels'])} channels, "
          f"{len(expected['posts'])} posts, {len(expected['albums'])} albums (expectation in expected.json)")
    return 0


def cmd_record(args: argparse.Namespace) -> int:
    from include.album.record import record

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
    from include.album.record import login

    api_id = args.api_id or int(input("api_id: "))
    api_hash = args.api_hash or getpass.getpass("api_hash: ")
    session = login(api_id, api_hash)
    print("\nSession string (a credential: store it only in the telegram_default connection, extra "
          '"session"; never in the repo, a log or a ticket):\n')
    print(session)
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    """Semantic search within a tenant; prints album id, channel, date, score and text."""
    from include.album.connections import embedder, load_settings, qdrant_client
    from include.album.index import QdrantIndex

    settings = load_settings()
    if args.qdrant_path:
        from qdrant_client import QdrantClient

        client = QdrantClient(path=args.qdrant_path)
    else:
        client = qdrant_client(settings)
    try:
        index = QdrantIndex(client, args.collection or settings.qdrant_collection, embedder(settings))
        index.ensure_collection()
        hits = index.search(args.tenant, args.query, album_id=args.album, kind="album" if args.albums_only else None,
                            outside_albums=args.outside_albums, labels=args.labels, limit=args.limit)
    finally:
        client.close()
    for hit in hits:
        album = f"album {hit.album_id}" if hit.album_id is not None else "no album"
        where = f"{hit.kind} {hit.channel_id}" + (f"/{hit.message_id}" if hit.message_id else "")
        text = " ".join(hit.text.split())[:100]
        print(f"{hit.score:6.3f}  {album:<10} {where:<24} {hit.posted_at[:16]}  {text}")
    if not hits:
        print("no results")
    return 0


def cmd_quarantine_list(args: argparse.Namespace) -> int:
    from include.album.quarantine import quarantined

    with _connect(args) as conn:
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
    from include.album.quarantine import requeue

    if not args.all and not args.album_ids:
        raise SystemExit("give album ids, or --all")
    with _connect(args) as conn:
        released = requeue(conn, None if args.all else args.album_ids)
    print(f"re-queued {len(released)} album(s): {', '.join(map(str, released)) or 'none were quarantined'}; "
          "the next run of telegram_albums processes them")
    return 0


def cmd_benchmark(args: argparse.Namespace) -> int:
    from include.album.benchmark import run, run_celery

    state_dir = Path(args.state_dir) if args.state_dir else None
    if args.steady:
        from include.album.benchmark_steady import run_steady

        run_steady(args.steady, Path(args.out), state_dir)
    elif args.executor == "celery":
        run_celery([int(n) for n in args.workers.split(",")], args.broker, Path(args.out), state_dir)
    else:
        run([int(size) for size in args.sizes.split(",")], Path(args.out), state_dir)
    print(f"wrote {args.out} and {Path(args.out).with_suffix('.json')}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from include.album import demo

    return demo.run(Path(args.state_dir) if args.state_dir else None, Path(args.archive) if args.archive else None)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m include.album", description=__doc__.splitlines()[0])
    parser.add_argument("--dsn", help="libpq DSN of the application database (default: $ALBUMS_DB_DSN or "
                                      "the Airflow connection albums_db)")
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("migrate", help="apply the Postgres migrations").set_defaults(func=cmd_migrate)

    channels = sub.add_parser("channels", help="manage channels").add_subparsers(dest="action", required=True)
    add = channels.add_parser("add", help="add (or re-activate) a channel")
    add.add_argument("username", nargs="?", help="@username (resolved once through Telegram unless --id is given)")
    add.add_argument("--id", type=int, help="Telegram channel id (skip resolving)")
    add.add_argument("--access-hash", type=int)
    add.add_argument("--title")
    add.add_argument("--tenant", action="append", help="subscribe this tenant (repeatable)")
    add.add_argument("--archive", help="resolve against an archive instead of Telegram; without a username, "
                                       "add every channel of the archive")
    add.set_defaults(func=cmd_channels_add)
    channels.add_parser("list", help="list channels").set_defaults(func=cmd_channels_list)
    remove = channels.add_parser("remove", help="deactivate a channel (its history is kept)")
    remove.add_argument("channel_id", type=int)
    remove.set_defaults(func=cmd_channels_remove)

    tenants = sub.add_parser("tenants", help="manage tenants").add_subparsers(dest="action", required=True)
    tadd = tenants.add_parser("add", help="add a tenant")
    tadd.add_argument("tenant_id")
    tadd.add_argument("--name")
    tadd.set_defaults(func=cmd_tenants_add)

    for name, func, help_text in (("subscribe", cmd_subscribe, "subscribe a tenant to a channel"),
                                  ("unsubscribe", cmd_unsubscribe, "remove a subscription")):
        command = sub.add_parser(name, help=help_text)
        command.add_argument("tenant_id")
        command.add_argument("channel_id", type=int)
        command.set_defaults(func=func)

    sample = sub.add_parser("sample", help="build the deterministic sample archive")
    sample.add_argument("path")
    sample.add_argument("--register", action="store_true", help="also add its channels, tenants, subscriptions")
    sample.set_defaults(func=cmd_sample)

    rec = sub.add_parser("record", help="record live channels into a telegram-archive/1 archive")
    rec.add_argument("channels", nargs="+", help="@usernames or ids")
    rec.add_argument("--out", required=True)
    rec.add_argument("--limit", type=int, default=200, help="newest messages per channel (default 200)")
    rec.add_argument("--archive", help=argparse.SUPPRESS)
    rec.set_defaults(func=cmd_record)

    login = sub.add_parser("login", help="log in once and print a StringSession for telegram_default")
    login.add_argument("--api-id", type=int)
    login.add_argument("--api-hash")
    login.set_defaults(func=cmd_login)

    search = sub.add_parser("search", help="semantic search in Qdrant, always within one tenant")
    search.add_argument("query")
    search.add_argument("--tenant", required=True)
    search.add_argument("--album", type=int, help="only within this album")
    scope = search.add_mutually_exclusive_group()
    scope.add_argument("--albums-only", action="store_true", help="album points only")
    scope.add_argument("--outside-albums", action="store_true", help="posts that belong to no album")
    search.add_argument("--labels", nargs="+", help="every one of these vision labels")
    search.add_argument("--limit", type=int, default=10)
    search.add_argument("--collection", help="default: setting qdrant_collection")
    search.add_argument("--qdrant-path", help="Qdrant local-mode directory (default: connection albums_qdrant)")
    search.set_defaults(func=cmd_search)

    quarantine = sub.add_parser("quarantine", help="albums set aside after failing every retry").add_subparsers(
        dest="action", required=True)
    quarantine.add_parser("list", help="list quarantined albums with their error").set_defaults(
        func=cmd_quarantine_list)
    requeue = quarantine.add_parser("requeue", help="release quarantined albums to the next run")
    requeue.add_argument("album_ids", nargs="*", type=int)
    requeue.add_argument("--all", action="store_true", help="every quarantined album")
    requeue.set_defaults(func=cmd_quarantine_requeue)

    bench = sub.add_parser("benchmark", help="measure each stage and the whole pipeline on synthetic archives")
    bench.add_argument("--sizes", default="100,1000,3000", help="albums per archive (default 100,1000,3000)")
    bench.add_argument("--out", default="docs/benchmarks.md")
    bench.add_argument("--executor", choices=["local", "celery"], default="local",
                       help="celery: the sample archive on the CeleryExecutor with --workers vision workers")
    bench.add_argument("--workers", default="1,2", help="vision worker counts to run with --executor celery")
    bench.add_argument("--broker", default="redis://127.0.0.1:6379/8", help="Celery broker (a Redis database "
                                                                             "of its own: it is flushed)")
    bench.add_argument("--steady", metavar="WINDOWS",
                       help="the steady-state windows instead: A (200 channels, all changed), B (1,000 channels, "
                            "200 changed), C (1,000, all changed) or CHANNELS/CHANGED, comma-separated")
    bench.add_argument("--state-dir")
    bench.set_defaults(func=cmd_benchmark)

    demo = sub.add_parser("demo", help="run the DAG end to end on the sample archive (embedded services)")
    demo.add_argument("--state-dir")
    demo.add_argument("--archive", help="a telegram-archive/1 directory to run on instead of the sample (its "
                                        "expected.json, if any, is checked)")
    demo.set_defaults(func=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except (LookupError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

