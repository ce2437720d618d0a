"""What Telegram's errors mean for the pipeline: one policy per kind (README "When Telegram fails").

* ``CHANNEL_UNAVAILABLE`` — the account lost the channel (made private, banned, deleted): the
  channel is set aside with its reason and re-checked later; its rows stay.
* ``SESSION_UNUSABLE`` — the session is revoked, logged out, deactivated or used from two
  places: no channel can be read with it, so the task fails at once (``SessionUnusable``), with
  no retry, and every channel waits at its mark for a new session.
* ``FILE_REFERENCE_EXPIRED`` — a photo's file reference went stale between fetching the message
  and downloading it: the message is fetched again by id and the download retried.
* ``TELEGRAM_DOWN`` — Telegram's 5xx answers and timeouts: Telethon retries them
  (``client.REQUEST_RETRIES``); then the channel is left for the next run.
"""

from __future__ import annotations

from telethon import errors
from telethon.errors.rpcerrorlist import rpc_errors_dict

from include.album.domain.settings import ConfigurationError

CHANNEL_UNAVAILABLE = (errors.ChannelPrivateError, errors.ChannelInvalidError, errors.ChannelBannedError,
                       errors.UserBannedInChannelError, errors.ChannelPublicGroupNaError)
SESSION_UNUSABLE = (errors.UnauthorizedError, errors.AuthKeyDuplicatedError)
FILE_REFERENCE_EXPIRED = (errors.FileReferenceExpiredError, errors.FilerefUpgradeNeededError)
TELEGRAM_DOWN = (errors.ServerError, errors.TimedOutError)


class SessionUnusable(ConfigurationError):
    """Telegram no longer accepts the session: fail without retrying, say how to make a new one."""

    def __init__(self, conn_id: str, cause: BaseException | str):
        why = cause if isinstance(cause, str) else f"{type(cause).__name__}: {cause}"
        super().__init__(
            f"the Telegram session in connection {conn_id} is no longer usable ({why}); create a new one "
            f"with `python -m include.album login` and store it as extra.session of connection {conn_id} "
            "(README \"Connections\"). Every channel waits at its mark; the first run with the new session "
            "catches up")
        self.reason = error_name(cause) if not isinstance(cause, str) else "UNAUTHORIZED"


_ERROR_STRINGS = {cls: name for name, cls in rpc_errors_dict.items()}


def error_name(exc: BaseException) -> str:
    """Telegram's error string of an RPC error (``CHANNEL_PRIVATE``), else the exception's class name."""
    if isinstance(exc, errors.FloodWaitError):
        return f"FLOOD_WAIT_{exc.seconds}"
    return _ERROR_STRINGS.get(type(exc), type(exc).__name__)
