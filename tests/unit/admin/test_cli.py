"""The CLI's parser and its login, without a database or Telegram."""

import argparse

import pytest

from include.album.admin.cli import build_parser, main
from include.album.source import record


def exits_with(capsys, *argv: str) -> tuple[int, str]:
    """The exit code and stderr of a command argparse refuses."""
    with pytest.raises(SystemExit) as refused:
        main(list(argv))
    return refused.value.code, capsys.readouterr().err


@pytest.mark.parametrize(("argv", "expected"), [
    (["chanels", "list"], "error: unknown command 'chanels': did you mean 'channels'? "
                          "(python -m include.album --help lists the commands)"),
    (["channels", "lst"], "error: unknown command 'lst': did you mean 'list'? "
                          "(python -m include.album channels --help lists the commands)"),
    (["quarantine", "requeu", "7"], "error: unknown command 'requeu': did you mean 'requeue'? "
                                    "(python -m include.album quarantine --help lists the commands)"),
    (["xyzzy"], "error: unknown command 'xyzzy' (python -m include.album --help lists the commands)"),
    (["browse", "--tenant", "acme", "--kind", "albm"], "error: --kind 'albm' is not one of album, post: "
                                                       "did you mean 'album'?"),
])
def test_a_mistyped_command_is_one_line_naming_the_nearest(capsys, argv, expected):
    code, err = exits_with(capsys, *argv)
    assert code == 2 and err == expected + "\n"


def test_other_mistakes_keep_argparses_usage_and_exit_2(capsys):
    code, err = exits_with(capsys, "search", "boats")
    assert code == 2
    assert err.startswith("usage: python -m include.album search")
    assert err.rstrip().endswith("error: the following arguments are required: --tenant")


def arguments(parser: argparse.ArgumentParser, command: str = "") -> list[tuple[str, argparse.Action]]:
    """Every argument of every command, with the command's words."""
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found.extend(arguments(sub, f"{command} {name}".strip()))
        elif not isinstance(action, argparse._HelpAction):
            found.append((command, action))
    return found


def test_every_argument_of_every_command_says_what_it_means():
    found = arguments(build_parser())
    assert len(found) > 40
    unexplained = [f"{command} {action.dest}" for command, action in found if not action.help]
    assert unexplained == []


def test_search_help_explains_the_query_the_tenant_and_the_limit(capsys):
    with pytest.raises(SystemExit):
        main(["search", "--help"])
    shown = " ".join(capsys.readouterr().out.split())
    assert "query what to find: words" in shown
    assert "--tenant TENANT the tenant whose channels are searched" in shown
    assert "--limit LIMIT at most this many hits, best first; an album is one hit (default 10)" in shown


@pytest.fixture
def telegram_login(monkeypatch) -> list[tuple[int, str]]:
    """``record.login`` replaced: the (api_id, api_hash) it was called with, no Telegram."""
    calls = []

    def login(api_id: int, api_hash: str) -> str:
        calls.append((api_id, api_hash))
        return "1BQANOTASESSION"

    monkeypatch.setattr(record, "login", login)
    monkeypatch.delenv("TELEGRAM_API_ID", raising=False)
    monkeypatch.delenv("TELEGRAM_API_HASH", raising=False)
    return calls


def refuse(prompt: str = "") -> str:
    raise AssertionError(f"asked {prompt!r} although the environment has it")


def test_login_takes_api_id_and_api_hash_from_the_environment(telegram_login, monkeypatch, capsys):
    monkeypatch.setenv("TELEGRAM_API_ID", "12345")
    monkeypatch.setenv("TELEGRAM_API_HASH", "0123456789abcdef")
    monkeypatch.setattr("builtins.input", refuse)
    monkeypatch.setattr("getpass.getpass", refuse)
    assert main(["login"]) == 0
    assert telegram_login == [(12345, "0123456789abcdef")]
    assert capsys.readouterr().out.rstrip().endswith("1BQANOTASESSION")


def test_login_asks_for_what_the_environment_lacks_and_the_hash_without_echo(telegram_login, monkeypatch):
    asked = []
    monkeypatch.setattr("builtins.input", lambda prompt: asked.append(prompt) or "12345")
    monkeypatch.setattr("getpass.getpass", lambda prompt: asked.append(prompt) or "0123456789abcdef")
    assert main(["login"]) == 0
    assert asked == ["api_id: ", "api_hash: "] and telegram_login == [(12345, "0123456789abcdef")]


def test_login_never_takes_the_api_hash_as_an_argument(telegram_login, capsys):
    code, err = exits_with(capsys, "login", "--api-hash", "0123456789abcdef")
    assert code == 2 and "unrecognized arguments: --api-hash" in err
    assert telegram_login == []


@pytest.mark.parametrize("where", ["environment", "prompt"])
def test_an_api_id_that_is_not_a_number_is_one_line_exit_2(telegram_login, monkeypatch, capsys, where):
    if where == "environment":
        monkeypatch.setenv("TELEGRAM_API_ID", "abc")
    else:
        monkeypatch.setattr("builtins.input", lambda prompt: "abc")
    monkeypatch.setattr("getpass.getpass", lambda prompt: "0123456789abcdef")
    assert main(["login"]) == 2
    assert capsys.readouterr().err == "error: api_id must be the number my.telegram.org shows (got 'abc')\n"
    assert telegram_login == []


def test_an_empty_api_hash_is_refused_before_telegram_is_asked(telegram_login, monkeypatch, capsys):
    monkeypatch.setenv("TELEGRAM_API_ID", "12345")
    monkeypatch.setattr("getpass.getpass", lambda prompt: "  ")
    assert main(["login"]) == 2
    assert capsys.readouterr().err.startswith("error: api_hash is empty")
    assert telegram_login == []
