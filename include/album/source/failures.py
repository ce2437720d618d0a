"""What Telegram's errors mean for the pipeline: one table, read by Telegram's error string.

Telethon turns each error string into a class, but its classes do not say what an error
means for a mirror (``FLOOD_PREMIUM_WAIT_90`` is not a ``FloodWaitError``), so every error is
sorted here by its string (``error_name``) into one ``Meaning``, each with one policy
(README "When Telegram fails"):

* ``WAIT`` — Telegram asks for a wait of N seconds (``FLOOD_WAIT_X``, ``FLOOD_PREMIUM_WAIT_X``,
  ``SLOWMODE_WAIT_X``, ``TAKEOUT_INIT_DELAY_X``, any ``*_WAIT_X``): what it concerns waits
  until it ends, measured from the moment it was given (``Wait``); nothing is skipped.
* ``SESSION_UNUSABLE`` — the session is revoked, logged out, deactivated or used from two
  places (and any other 401): the task fails at once, without retries (``SessionUnusable``).
* ``CHANNEL_UNAVAILABLE`` — the account lost the channel: it is set aside until re-checked.
* ``REFERENCE_EXPIRED`` — a file reference went stale: the message is fetched again by id.
* ``MEDIA_GONE`` — the file itself is gone for good: a terminal skip with Telegram's reason.
* ``PASSING`` — 5xx answers, timeouts, and every error not named above: it may pass, so the
  media is fetched again by a later run (a bounded number of times) or the channel waits for
  the next run; nothing is given up on an error nobody has classified.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from telethon import errors
from telethon.errors.rpcerrorlist import rpc_errors_dict, rpc_errors_re

from include.album.domain.settings import ConfigurationError


class Meaning(StrEnum):
    WAIT = "wait"
    SESSION_UNUSABLE = "session_unusable"
    CHANNEL_UNAVAILABLE = "channel_unavailable"
    REFERENCE_EXPIRED = "reference_expired"
    MEDIA_GONE = "media_gone"
    PASSING = "passing"


# A wait: the error string carries its length (seconds; minutes where it says MIN).
_WAIT = re.compile(r"^(?:[A-Z0-9]+_)*(?:WAIT|DELAY)_(?P<n>\d+)(?P<min>MIN)?$")
# Named by Telegram's error list (https://core.telegram.org/api/errors and Telethon's table).
SESSION_UNUSABLE_ERRORS = frozenset({
    "AUTH_KEY_UNREGISTERED", "AUTH_KEY_INVALID", "AUTH_KEY_PERM_EMPTY", "AUTH_KEY_DUPLICATED", "SESSION_REVOKED",
    "SESSION_EXPIRED", "SESSION_PASSWORD_NEEDED", "USER_DEACTIVATED", "USER_DEACTIVATED_BAN", "ACTIVE_USER_REQUIRED",
})
CHANNEL_UNAVAILABLE_ERRORS = frozenset({
    "CHANNEL_PRIVATE", "CHANNEL_INVALID", "CHANNEL_BANNED", "USER_BANNED_IN_CHANNEL", "CHANNEL_PUBLIC_GROUP_NA",
})
REFERENCE_EXPIRED_ERRORS = frozenset({
    "FILE_REFERENCE_EXPIRED", "FILE_REFERENCE_INVALID", "FILE_REFERENCE_EMPTY", "FILEREF_UPGRADE_NEEDED",
})
# The file is gone: deleted, or the location names nothing Telegram can serve any more.
MEDIA_GONE_ERRORS = frozenset({
    "FILE_ID_INVALID", "LOCATION_INVALID", "MEDIA_EMPTY", "MEDIA_INVALID", "PHOTO_INVALID", "PHOTO_ID_INVALID",
    "PHOTO_FILE_MISSING", "DOCUMENT_INVALID", "VIDEO_FILE_INVALID",
})
_NAMED = {Meaning.SESSION_UNUSABLE: SESSION_UNUSABLE_ERRORS, Meaning.CHANNEL_UNAVAILABLE: CHANNEL_UNAVAILABLE_ERRORS,
          Meaning.REFERENCE_EXPIRED: REFERENCE_EXPIRED_ERRORS, Meaning.MEDIA_GONE: MEDIA_GONE_ERRORS}


def rules_matching(error: str, code: int | None = None) -> list[Meaning]:
    """Every rule of the table that names ``error`` (the tests check there is at most one)."""
    found = [meaning for meaning, names in _NAMED.items() if error.upper() in names]
    if _WAIT.match(error.upper()):
        found.append(Meaning.WAIT)
    if code == 401 and Meaning.SESSION_UNUSABLE not in found:  # any other "unauthorized"
        found.append(Meaning.SESSION_UNUSABLE)
    return found


def meaning_of(error: str, code: int | None = None) -> Meaning:
    """What Telegram's error string means; ``PASSING`` for anything the table does not name."""
    found = rules_matching(error, code)
    return found[0] if found else Meaning.PASSING


_ERROR_STRINGS = {cls: name for name, cls in rpc_errors_dict.items()}
_PATTERNS = {cls: pattern for pattern, cls in rpc_errors_re}


def error_name(exc: BaseException) -> str:
    """Telegram's error string of an RPC error (``CHANNEL_PRIVATE``, ``FLOOD_PREMIUM_WAIT_90``),
    else the exception's class name."""
    cls = type(exc)
    if cls in _PATTERNS:  # a string with a number in it: put the number back
        captured = getattr(exc, "seconds", None)
        if captured is None:
            captured = next((v for v in vars(exc).values() if isinstance(v, int) and not isinstance(v, bool)), 0)
        return re.sub(r"\(\\d\+\)", str(captured), _PATTERNS[cls])
    if cls in _ERROR_STRINGS:
        return _ERROR_STRINGS[cls].upper()
    message = getattr(exc, "message", None)  # an error Telethon does not know: its string as sent
    if isinstance(exc, errors.RPCError) and isinstance(message, str) and message:
        return message
    return cls.__name__


def meaning(exc: BaseException) -> Meaning:
    """What an exception from Telegram means (``PASSING`` for anything that is not an RPC error
    with a meaning of its own: a dropped connection, a timeout of ours)."""
    if not isinstance(exc, errors.RPCError):
        return Meaning.PASSING
    return meaning_of(error_name(exc), abs(exc.code) if isinstance(exc.code, int) else None)


def is_server_error(exc: BaseException) -> bool:
    """Telegram's own failures (5xx, timeouts): many in a row mean Telegram is down, not the channel."""
    code = getattr(exc, "code", None)
    return isinstance(exc, errors.RPCError) and isinstance(code, int) and abs(code) >= 500


@dataclass(frozen=True)
class Wait:
    """A wait Telegram gave: its error string, its length, and when it ends (counted from when it was given)."""

    error: str
    seconds: int
    until: datetime

    @property
    def given_at(self) -> datetime:
        return self.until - timedelta(seconds=self.seconds)

    @classmethod
    def of(cls, exc: BaseException, now: datetime | None = None) -> Wait | None:
        """The wait ``exc`` asks for, ending ``seconds`` after ``now`` (the moment it was given); None if
        ``exc`` is not a wait."""
        if meaning(exc) is not Meaning.WAIT:
            return None
        name = error_name(exc)
        seconds = getattr(exc, "seconds", None)
        if not isinstance(seconds, int):
            match = _WAIT.match(name.upper())
            seconds = int(match["n"]) * (60 if match["min"] else 1)
        return cls(error=name, seconds=seconds, until=(now or datetime.now(UTC)) + timedelta(seconds=seconds))


class SessionUnusable(ConfigurationError):
    """Telegram no longer accepts the session: fail without retrying, say how to make a new one."""

    def __init__(self, conn_id: str, cause: BaseException | str):
        why = cause if isinstance(cause, str) else f"{type(cause).__name__}: {cause}"
        super().__init__(
            f"the Telegram session in connection {conn_id} is no longer usable ({why}); create a new one "
            f"with `python -m include.album login` and store it as extra.session of connection {conn_id} "
            "(README \"Configuration\"). Every channel waits at its mark; the first run with the new session "
            "catches up")
        self.reason = error_name(cause) if not isinstance(cause, str) else "UNAUTHORIZED"
