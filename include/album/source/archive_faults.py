"""Telegram's failures, answered by the archive transport instead of an answer (``Fault``).

A fault is an RPC error string (``CHANNEL_PRIVATE``, ``AUTH_KEY_DUPLICATED``,
``FILE_REFERENCE_EXPIRED``, ``FLOOD_WAIT_3``, ``FLOOD_PREMIUM_WAIT_90``, ``RPC_CALL_FAIL``,
``TIMEOUT``, ...) answered for one channel's (or every) request of a kind, after letting the
first N through or not, once, N times or always. Telethon's own ``rpc_message_to_error``
turns it into the exception class the live client would raise. The listening client has
faults of its own (``archive_updates``: ``DISCONNECT``, ``GAP``, ``CHANNEL_TOO_LONG``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from telethon import errors, functions, types

from include.album.source.failures import Meaning, meaning_of


def _is_preview(request: Any) -> bool:
    location = getattr(request, "location", None)
    return isinstance(location, types.InputDocumentFileLocation) and bool(location.thumb_size)


# The RPCs a fault can name, by what they do.
RPC_KINDS: dict[str, Callable[[Any], bool]] = {
    "history": lambda r: isinstance(r, functions.messages.GetHistoryRequest),
    "messages": lambda r: isinstance(r, functions.channels.GetMessagesRequest),  # get_messages(ids=...)
    "download": lambda r: isinstance(r, functions.upload.GetFileRequest),  # files and previews
    "preview": lambda r: isinstance(r, functions.upload.GetFileRequest) and _is_preview(r),  # a video's still
    "dialogs": lambda r: isinstance(r, functions.messages.GetPeerDialogsRequest),
    # The first request of a connection: what a session Telegram refuses fails on (tasks ask
    # nothing only to check the session; Telethon's updates.getState was that request once).
    "state": lambda r: isinstance(r, functions.updates.GetStateRequest),
}
# Telegram's error codes for the strings the pipeline meets (others default to 400; waits 420).
# Telethon picks the class by the string; the code is what the live answer would carry.
_ERROR_CODES = {"AUTH_KEY_UNREGISTERED": 401, "SESSION_REVOKED": 401, "SESSION_EXPIRED": 401,
                "USER_DEACTIVATED": 401, "USER_DEACTIVATED_BAN": 401, "AUTH_KEY_DUPLICATED": 406,
                "RPC_CALL_FAIL": 500, "RPC_MCGET_FAIL": 500, "TIMEOUT": -503}


@dataclass
class Fault:
    """Telegram answering ``error`` (its RPC error string) instead of the answer.

    ``channel`` None: requests of any channel, and those of none (the session's own); ``rpcs``
    empty: every kind of request (else names of ``RPC_KINDS``); ``after``: that many matching
    requests are answered first (a fault mid-album: the second download); ``times`` None:
    always. Counted per client: each task builds its own from the connection, as each live task
    connects anew.
    """

    error: str
    channel: int | None = None
    rpcs: frozenset[str] = frozenset()
    times: int | None = 1
    after: int = 0

    @classmethod
    def from_mapping(cls, value: dict) -> Fault:
        """``{"error": "CHANNEL_PRIVATE", "channel": 1, "rpc": "history"|[...], "after": 0,
        "times": 1|"once"|"always"}``."""
        unknown = sorted(set(value) - {"error", "channel", "rpc", "times", "after"})
        if unknown or not isinstance(value.get("error"), str):
            raise ValueError(f"archive fault {value!r}: needs error (an RPC error string) and may have "
                             f"channel, rpc, after, times; unknown keys {unknown}")
        rpc = value.get("rpc") or []
        rpcs = frozenset([rpc] if isinstance(rpc, str) else rpc) - {"any"}
        if rpcs - set(RPC_KINDS):
            raise ValueError(f"archive fault {value!r}: rpc must be any or one of {sorted(RPC_KINDS)}")
        times = value.get("times", 1)
        times = {"once": 1, "always": None}.get(times, times)
        if times is not None and (not isinstance(times, int) or isinstance(times, bool) or times < 1):
            raise ValueError(f"archive fault {value!r}: times must be once, always or a positive integer")
        after = value.get("after", 0)
        if not isinstance(after, int) or isinstance(after, bool) or after < 0:
            raise ValueError(f"archive fault {value!r}: after must be a whole number of requests to let through")
        channel = value.get("channel")
        return cls(error=value["error"], channel=None if channel is None else int(channel), rpcs=rpcs, times=times,
                   after=after)

    def matches(self, request: Any, channel_ids: set[int], *, first: bool = False) -> bool:
        if self.times == 0:
            return False
        kinds = {kind for kind in self.rpcs if RPC_KINDS[kind](request) or (kind == "state" and first)}
        if self.rpcs and not kinds:
            return False
        if self.channel is not None and self.channel not in channel_ids:
            return False
        if self.after:  # let this one through
            self.after -= 1
            return False
        return True

    def raise_for(self, request: Any) -> None:
        if self.times is not None:
            self.times -= 1
        default = 420 if meaning_of(self.error) is Meaning.WAIT else 400
        code = _ERROR_CODES.get(self.error, default)
        raise errors.rpc_message_to_error(types.RpcError(error_code=code, error_message=self.error), request)
