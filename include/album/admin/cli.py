"""Command line: ``python -m include.album ...`` (or the ``telegram-albums`` entry point).

The application database is ``--dsn`` / ``$ALBUMS_DB_DSN`` if given, else the Airflow
connection ``albums_db``; Telegram is the connection ``telegram_default``. This module is the
parser and the handling of errors; what each command does is in ``commands.py``.
"""

from __future__ import annotations

import argparse
import difflib
import logging
import re
import sys
from typing import NoReturn

from include.album.admin.commands import (
    cmd_browse,
    cmd_channels_add,
    cmd_channels_enable,
    cmd_channels_list,
    cmd_channels_remove,
    cmd_login,
    cmd_migrate,
    cmd_quarantine_list,
    cmd_quarantine_requeue,
    cmd_record,
    cmd_reindex,
    cmd_search,
    cmd_subscribe,
    cmd_tenants_add,
    cmd_unsubscribe,
)


def _common_options(parser: argparse.ArgumentParser, *, after_command: bool = False) -> None:
    """``--dsn`` and ``-v``, before the subcommand or after it: after it they default to nothing,
    so a value given before is kept."""
    default = {"default": argparse.SUPPRESS} if after_command else {}
    parser.add_argument("--dsn", help="libpq DSN of the application database (default: $ALBUMS_DB_DSN or the "
                                      "Airflow connection albums_db)", **default)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging, and tracebacks of errors",
                        **default)


# argparse's message for a value outside an argument's choices (a command is one).
_INVALID_CHOICE = re.compile(r"argument (?P<argument>\S+): invalid choice: '(?P<word>.*)' "
                             r"\(choose from (?P<choices>.*)\)")


class CommandParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` that answers a mistyped command or option value with one line, naming
    the nearest choice if one is close; its other errors are argparse's own (usage and message).
    Exit code 2 either way."""

    def error(self, message: str) -> NoReturn:
        mistyped = _INVALID_CHOICE.fullmatch(message)
        if mistyped is None:
            super().error(message)
        word, argument = mistyped["word"], mistyped["argument"]
        choices = [choice.strip(" '") for choice in mistyped["choices"].split(",")]
        nearest = difflib.get_close_matches(word, choices, n=1)
        suggestion = f": did you mean {nearest[0]!r}?" if nearest else ""
        if argument.startswith("-"):
            self.exit(2, f"error: {argument} {word!r} is not one of {', '.join(choices)}{suggestion}\n")
        self.exit(2, f"error: unknown command {word!r}{suggestion} ({self.prog} --help lists the commands)\n")


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
    parser = CommandParser(prog="python -m include.album", description=__doc__.splitlines()[0])
    _common_options(parser)
    common = argparse.ArgumentParser(add_help=False)
    _common_options(common, after_command=True)
    sub = _Commands(parser.add_subparsers(dest="command", required=True), common)

    sub.add_parser("migrate", help="apply the Postgres migrations").set_defaults(func=cmd_migrate)
    _add_channel_commands(sub)
    _add_tenant_commands(sub)
    _add_telegram_commands(sub)
    _add_search_commands(sub)
    _add_quarantine_commands(sub)
    return parser


def _add_channel_commands(sub: _Commands) -> None:
    channels = sub.group("channels", help="manage channels")
    add = channels.add_parser("add", help="add (or re-activate) a channel")
    add.add_argument("username", nargs="?", help="@username (resolved once through Telegram unless --id is given)")
    add.add_argument("--id", type=int, help="the channel's Telegram id, to add it without asking Telegram (needs "
                                            "--access-hash and --title)")
    add.add_argument("--access-hash", type=int, help="the channel's access_hash, as Telegram gave it to this "
                                                     "account (with --id)")
    add.add_argument("--title", help="the channel's title (with --id)")
    add.add_argument("--tenant", action="append", help="a tenant to subscribe to the channel, added if new "
                                                       "(repeatable; default: none)")
    add.add_argument("--archive", help="resolve against an archive instead of Telegram; without a username, "
                                       "add every channel of the archive")
    add.set_defaults(func=cmd_channels_add)
    channels.add_parser("list", help="list channels").set_defaults(func=cmd_channels_list)
    remove = channels.add_parser("remove", help="deactivate a channel (its history is kept)")
    remove.add_argument("channel", help=CHANNEL_HELP)
    remove.set_defaults(func=cmd_channels_remove)
    enable = channels.add_parser("enable", help="take back a channel set aside because Telegram refused it")
    enable.add_argument("channel", help=CHANNEL_HELP)
    enable.set_defaults(func=cmd_channels_enable)


def _add_tenant_commands(sub: _Commands) -> None:
    """``tenants add``, and the subscriptions of tenants to channels."""
    tenants = sub.group("tenants", help="manage tenants")
    tadd = tenants.add_parser("add", help="add a tenant")
    tadd.add_argument("tenant_id", help="the new tenant's id: 1-63 of a-z, 0-9, '_' and '-'")
    tadd.add_argument("--name", help="its display name (default: the id)")
    tadd.set_defaults(func=cmd_tenants_add)

    for name, func, help_text in (("subscribe", cmd_subscribe, "subscribe a tenant to a channel"),
                                  ("unsubscribe", cmd_unsubscribe, "remove a subscription")):
        command = sub.add_parser(name, help=help_text)
        command.add_argument("tenant_id", help="the tenant's id (`tenants add` adds one)")
        command.add_argument("channel", help=CHANNEL_HELP)
        command.set_defaults(func=func)


def _add_telegram_commands(sub: _Commands) -> None:
    """``record`` and ``login``: the commands that talk to Telegram itself."""
    rec = sub.add_parser("record", help="record live channels into a telegram-archive/1 archive")
    rec.add_argument("channels", nargs="+", help="the channels to record: @usernames or Telegram ids")
    rec.add_argument("--out", required=True, help="the archive directory to write (created if missing)")
    rec.add_argument("--limit", type=int, default=200, help="newest messages per channel (default 200)")
    rec.add_argument("--archive", help=argparse.SUPPRESS)
    rec.set_defaults(func=cmd_record)

    login = sub.add_parser("login", help="log in once and print a StringSession for telegram_default",
                           description="Log in to Telegram once (phone, code, 2FA) and print a StringSession for "
                                       "the connection telegram_default (or --conn-id). api_id and api_hash "
                                       "(my.telegram.org) come from $TELEGRAM_API_ID and $TELEGRAM_API_HASH, else "
                                       "they are asked for; never arguments (a shell's history would keep them).")
    login.add_argument("--conn-id", default="telegram_default",
                       help="the connection the session is for: telegram_default (the pulling tasks) or "
                            "telegram_updates (the updates listener: a second login, its own session)")
    login.set_defaults(func=cmd_login)


def _add_search_commands(sub: _Commands) -> None:
    search = sub.add_parser("search", help="search albums and posts by their words and meaning, always within "
                                            "one tenant")
    search.add_argument("query", help="what to find: words (any language, any inflection), @names, #tags, or a "
                                      "description of what you mean; quote it when it has spaces")
    search.add_argument("--tenant", required=True, help="the tenant whose channels are searched (required: "
                                                        "nothing is searched across tenants)")
    search.add_argument("--album", type=int, help="only this album's point and posts (the album's id)")
    search.add_argument("--channel", help=f"only this channel: {CHANNEL_HELP}")
    scope = search.add_mutually_exclusive_group()
    scope.add_argument("--albums-only", action="store_true", help="album points only")
    scope.add_argument("--outside-albums", action="store_true", help="posts that belong to no album")
    search.add_argument("--labels", nargs="+", help="only points with every one of these vision labels")
    search.add_argument("--limit", type=int, default=10, help="at most this many hits, best first; an album is "
                                                              "one hit (default 10)")
    _add_qdrant_options(search)
    search.set_defaults(func=cmd_search)
    browse = sub.add_parser("browse", help="a tenant's albums and posts by filters, no query (text-less ones too)")
    browse.add_argument("--tenant", required=True, help="the tenant whose channels are browsed")
    browse.add_argument("--album", type=int, help="this album's point, then its posts in order (the album's id)")
    browse.add_argument("--kind", choices=["album", "post"], help="only album points or only post points "
                                                                  "(default: both)")
    browse.add_argument("--labels", nargs="+", help="only points with every one of these vision labels")
    browse.add_argument("--channel", help=f"only this channel: {CHANNEL_HELP}")
    browse.add_argument("--limit", type=int, default=50, help="at most this many points (default 50)")
    _add_qdrant_options(browse)
    browse.set_defaults(func=cmd_browse)
    reindex = sub.add_parser("reindex", help="rebuild the Qdrant points (and graph albums) from Postgres and S3, "
                                             "without Telegram")
    reindex.add_argument("--tenant", help="only the channels this tenant reads (default: every channel)")
    reindex.add_argument("--collection", help="the collection to write (default: setting qdrant_collection); a new "
                                              "one is created with the current schema")
    reindex.add_argument("--full", action="store_true", help="rewrite everything, even after a finished pass "
                                                             "(default: resume an interrupted pass, or catch up)")
    reindex.add_argument("--qdrant-path", help="Qdrant local-mode directory (default: connection albums_qdrant)")
    reindex.set_defaults(func=cmd_reindex)


CHANNEL_HELP = "a channel's @username or its Telegram id"


def _add_qdrant_options(command: argparse.ArgumentParser) -> None:
    command.add_argument("--collection", help="the Qdrant collection to read (default: setting qdrant_collection)")
    command.add_argument("--qdrant-path", help="Qdrant local-mode directory (default: connection albums_qdrant)")


def _add_quarantine_commands(sub: _Commands) -> None:
    quarantine = sub.group("quarantine", help="albums set aside after failing every retry")
    quarantine.add_parser("list", help="list quarantined albums with their error").set_defaults(
        func=cmd_quarantine_list)
    requeue = quarantine.add_parser("requeue", help="release quarantined albums to the next run")
    requeue.add_argument("album_ids", nargs="*", type=int, help="the ids of the albums to release "
                                                                "(`quarantine list` shows them)")
    requeue.add_argument("--all", action="store_true", help="every quarantined album, instead of ids")
    requeue.set_defaults(func=cmd_quarantine_requeue)


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

