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
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING

from include.album.admin import channels as channel_admin
from include.album.stores import db

if TYPE_CHECKING:
    import psycopg

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
        from include.album.orchestration.connections import albums_db, load_settings

        return albums_db(load_settings())
    except psycopg.OperationalError as exc:
        reason = " ".join(str(exc).split("\n")[0].split())
        raise DatabaseUnreachable(f"cannot reach the application database ({reason}): start Postgres, or point "
                                  f"{source} at it") from None
    except ValueError as exc:
        if "albums_db is not defined" in str(exc) and not dsn:
            raise ValueError(f"{exc}; or give --dsn / $ALBUMS_DB_DSN") from None
        raise


def _telegram(args: argparse.Namespace) -> PipelineClient:
    if getattr(args, "archive", None):
        from include.album.source.archive import ArchiveTelegramClient

        return ArchiveTelegramClient(args.archive)
    from include.album.orchestration.connections import load_settings, telegram_client

    return telegram_client(load_settings())


def cmd_migrate(args: argparse.Namespace) -> int:
    with application_db(args.dsn) as conn:
        applied = db.apply_migrations(conn)
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
        from include.album.source.archive import read_manifest

        with application_db(args.dsn) as conn:
            tenants = {tenant: [int(c["id"]) for c in read_manifest(Path(args.archive))["channels"]]
                       for tenant in args.tenant} if args.tenant else None
            added = channel_admin.register_archive(conn, read_manifest(Path(args.archive)), tenants)
        print(f"{len(added)} channel(s) of {args.archive} added, subscribed by {', '.join(args.tenant or ['default'])}")
        return 0
    else:
        raise SystemExit("give a username to resolve, --id/--access-hash/--title, or --archive alone for all "
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
        if row["state"] != "active":
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
        if not channel_admin.deactivate_channel(conn, args.channel_id):
            raise LookupError(f"channel {args.channel_id} is not registered: `channels list` shows the channels")
    print(f"channel {args.channel_id} deactivated (history kept)")
    return 0


def cmd_channels_enable(args: argparse.Namespace) -> int:
    with application_db(args.dsn) as conn:
        found = channel_admin.enable_channel(conn, args.channel_id)
    print(f"channel {args.channel_id} " + ("enabled: the next run asks Telegram for it" if found else
                                           "not found, or not set aside"))
    return 0 if found else 1


def cmd_tenants_add(args: argparse.Namespace) -> int:
    with application_db(args.dsn) as conn:
        channel_admin.add_tenant(conn, args.tenant_id, args.name)
    print(f"tenant {args.tenant_id} added")
    return 0


def cmd_subscribe(args: argparse.Namespace) -> int:
    with application_db(args.dsn) as conn:
        channel_admin.subscribe(conn, args.tenant_id, args.channel_id)
    print(f"tenant {args.tenant_id} subscribes to channel {args.channel_id}")
    return 0


def cmd_unsubscribe(args: argparse.Namespace) -> int:
    with application_db(args.dsn) as conn:
        found = channel_admin.unsubscribe(conn, args.tenant_id, args.channel_id)
    print(f"tenant {args.tenant_id} {'unsubscribed from' if found else 'was not subscribed to'} "
          f"channel {args.channel_id}")
    return 0 if found else 1


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
    from include.album.source.record import login

    api_id = args.api_id or int(input("api_id: "))
    api_hash = args.api_hash or getpass.getpass("api_hash: ")
    session = login(api_id, api_hash)
    print("\nSession string (a credential: store it only in the telegram_default connection, extra "
          '"session"; never in the repo, a log or a ticket):\n')
    print(session)
    return 0


def _search_index(args: argparse.Namespace) -> AbstractContextManager[QdrantIndex]:
    from include.album.orchestration.connections import load_settings, search_index

    return search_index(load_settings(), path=args.qdrant_path, collection=args.collection)


def _print_hits(hits: list[Hit]) -> None:
    for hit in hits:
        album = f"album {hit.album_id}" if hit.album_id is not None else "no album"
        where = f"{hit.kind} {hit.channel_id}" + (f"/{hit.message_id}" if hit.message_id else "")
        text = " ".join(hit.text.split())[:100] or "(no text)"
        score = "     -" if hit.score is None else f"{hit.score:6.3f}"
        print(f"{score}  {album:<10} {where:<24} {hit.posted_at[:16]}  {text}")


def cmd_search(args: argparse.Namespace) -> int:
    """Semantic search within a tenant; prints score, album id, channel, date and text."""
    if not args.query.strip():
        raise ValueError("empty query: give the words to search for")
    with _search_index(args) as index:
        hits = index.search(args.tenant, args.query, album_id=args.album, kind="album" if args.albums_only else None,
                            outside_albums=args.outside_albums, labels=args.labels, limit=args.limit)
    _print_hits(hits)
    if not hits:
        print(f"no results: nothing in tenant {args.tenant} matches well enough (score floor "
              f"{index.embedder.score_floor})")
    return 0


def cmd_browse(args: argparse.Namespace) -> int:
    """Points of a tenant by album, labels, channel or kind, newest first, without a query:
    albums and posts with no text are found too."""
    with _search_index(args) as index:
        hits = index.browse(args.tenant, album_id=args.album, kind=args.kind, labels=args.labels,
                            channel_id=args.channel, limit=args.limit)
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
        raise SystemExit("give album ids, or --all")
    with application_db(args.dsn) as conn:
        released = requeue(conn, None if args.all else args.album_ids)
    print(f"re-queued {len(released)} album(s): {', '.join(map(str, released)) or 'none were quarantined'}; "
          "the next run of telegram_albums processes them")
    return 0


def _common_options(parser: argparse.ArgumentParser, *, after_command: bool = False) -> None:
    """``--dsn`` and ``-v``, before the subcommand or after it: after it they default to nothing,
    so a value given before is kept."""
    default = {"default": argparse.SUPPRESS} if after_command else {}
    parser.add_argument("--dsn", help="libpq DSN of the application database (default: $ALBUMS_DB_DSN or the "
                                      "Airflow connection albums_db)", **default)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging, and tracebacks of errors",
                        **default)


class _Commands:
    """Subcommands that also take the common options (``--dsn``, ``-v``) after their name."""

    def __init__(self, subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser):
        self.subparsers, self.common = subparsers, common

    def add_parser(self, name: str, **kwargs) -> argparse.ArgumentParser:
        return self.subparsers.add_parser(name, parents=[self.common], **kwargs)

    def group(self, name: str, help: str) -> _Commands:  # noqa: A002 - argparse's own word
        return _Commands(self.subparsers.add_parser(name, help=help).add_subparsers(dest="action", required=True),
                         self.common)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m include.album", description=__doc__.splitlines()[0])
    _common_options(parser)
    common = argparse.ArgumentParser(add_help=False)
    _common_options(common, after_command=True)
    sub = _Commands(parser.add_subparsers(dest="command", required=True), common)

    sub.add_parser("migrate", help="apply the Postgres migrations").set_defaults(func=cmd_migrate)

    channels = sub.group("channels", help="manage channels")
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
    enable = channels.add_parser("enable", help="take back a channel set aside because Telegram refused it")
    enable.add_argument("channel_id", type=int)
    enable.set_defaults(func=cmd_channels_enable)

    tenants = sub.group("tenants", help="manage tenants")
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
    browse = sub.add_parser("browse", help="a tenant's albums and posts by filters, no query (text-less ones too)")
    browse.add_argument("--tenant", required=True)
    browse.add_argument("--album", type=int, help="this album's point and its posts'")
    browse.add_argument("--kind", choices=["album", "post"])
    browse.add_argument("--labels", nargs="+", help="every one of these vision labels")
    browse.add_argument("--channel", type=int, help="Telegram channel id")
    browse.add_argument("--limit", type=int, default=50)
    browse.add_argument("--collection", help="default: setting qdrant_collection")
    browse.add_argument("--qdrant-path", help="Qdrant local-mode directory (default: connection albums_qdrant)")
    browse.set_defaults(func=cmd_browse)

    quarantine = sub.group("quarantine", help="albums set aside after failing every retry")
    quarantine.add_parser("list", help="list quarantined albums with their error").set_defaults(
        func=cmd_quarantine_list)
    requeue = quarantine.add_parser("requeue", help="release quarantined albums to the next run")
    requeue.add_argument("album_ids", nargs="*", type=int)
    requeue.add_argument("--all", action="store_true", help="every quarantined album")
    requeue.set_defaults(func=cmd_quarantine_requeue)

    return parser


# Commands of the development tools (embedded services, sample archives), not of the product.
DEV_COMMANDS = ("demo", "benchmark", "sample")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    dev = _command_word(argv)
    if dev in DEV_COMMANDS:
        print(f"error: {dev} is a development tool: run `python -m devtools {dev}` in a checkout with "
              "requirements-dev.txt installed", file=sys.stderr)
        return 2
    return run_command(build_parser().parse_args(argv))


def _command_word(argv: list[str]) -> str | None:
    """The subcommand: the first word that is neither an option nor the value of ``--dsn``."""
    words = iter(argv)
    for word in words:
        if word == "--dsn":
            next(words, None)
        elif not word.startswith("-"):
            return word
    return None


def run_command(args: argparse.Namespace) -> int:
    """Run a parsed command (``args.func``): debug logging with ``-v``; a mistake the user can fix
    (unknown id, invalid value, unreachable or unmigrated database, missing connection,
    unreadable archive) is one line on stderr and exit code 2; ``-v`` shows its traceback."""
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    import psycopg

    from include.album.source.archive import ArchiveError

    try:
        return args.func(args)
    except psycopg.errors.UndefinedTable as exc:
        if args.verbose:
            raise
        print(f"error: the application database has no schema yet ({exc.diag.message_primary}): run "
              "`python -m include.album migrate` (same --dsn or connection) first", file=sys.stderr)
        return 2
    except (LookupError, ValueError, ArchiveError) as exc:
        if args.verbose:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

