"""The Asset ``telegram.updates`` and the trigger that watches Telegram for it.

``TelegramUpdatesTrigger`` runs in the triggerer (an ``AssetWatcher`` of ``TELEGRAM_UPDATES``;
it lives in this installed package, on the triggerer's and the dag-processor's import path,
not in the DAG folder). It runs the updates listener (``steps.listener``) with the connection
``telegram_updates`` — a second Telegram login, so the pulling tasks' session is never used
from two places — and turns each batch of hints into a ``TriggerEvent``:
``{"channels": [{"id": <channel id>, "newest": <message id>}, ...]}``. Airflow makes it an asset
event that starts ``telegram_albums``, which pulls the channels the listener heard.

Without the connection the trigger waits, looking for it every ``CONNECTION_POLL_SECONDS``:
``telegram_albums`` then runs on its 5-minute schedule alone, as it does whenever the listener
is down. An event trigger must never return (Airflow would start it again every second).

Changing this module or the listener needs a restart of the triggerer to take effect.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
from collections.abc import AsyncIterator
from typing import Any

from airflow.sdk import Asset, AssetWatcher
from airflow.triggers.base import BaseEventTrigger, TriggerEvent

log = logging.getLogger(__name__)

UPDATES_CONN_ID = "telegram_updates"
CONNECTION_POLL_SECONDS = 60


class TelegramUpdatesTrigger(BaseEventTrigger):
    """Hears the subscribed channels post; yields which (``steps.listener``). Identical kwargs
    make one trigger row, so every DAG parse keeps the same trigger."""

    def __init__(self, conn_id: str = UPDATES_CONN_ID, db_conn_id: str = "albums_db", album_quiet: float = 5.0):
        super().__init__()
        self.conn_id, self.db_conn_id, self.album_quiet = conn_id, db_conn_id, album_quiet

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (f"{type(self).__module__}.{type(self).__qualname__}",
                {"conn_id": self.conn_id, "db_conn_id": self.db_conn_id, "album_quiet": self.album_quiet})

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from airflow.sdk.observability import stats

        from include.album.steps import metrics
        from include.album.steps.listener import ListenerConfig, UpdatesListener

        metrics.send_to(stats)
        await self._connection_defined()
        listener = UpdatesListener(self._open_db, self._make_client, holder=_holder(),
                                   config=ListenerConfig(name=self.conn_id, album_quiet=self.album_quiet))
        async for hints in listener.hints():
            yield TriggerEvent({"channels": [{"id": h.channel_id, "newest": h.newest} for h in hints]})

    async def _connection_defined(self) -> None:
        """Wait until the listener's connection exists (said once, then quietly)."""
        said = False
        while True:
            try:
                await _connection(self.conn_id)
                return
            except Exception as exc:  # noqa: BLE001 - not defined (or not readable yet): look again later
                if not said:
                    log.info("no connection %s (%s): the Telegram updates listener is off and telegram_albums runs "
                             "on its 5-minute schedule; add the connection (a second login, README \"Freshness\") "
                             "to hear channels post within seconds", self.conn_id, type(exc).__name__)
                    said = True
                await asyncio.sleep(CONNECTION_POLL_SECONDS)

    async def _open_db(self) -> Any:
        import psycopg
        from psycopg.conninfo import make_conninfo

        connection = await _connection(self.db_conn_id)
        conninfo = make_conninfo(host=connection.host, port=connection.port, user=connection.login,
                                 password=connection.password, dbname=connection.schema)
        return await psycopg.AsyncConnection.connect(conninfo, autocommit=True)

    async def _make_client(self) -> Any:
        from include.album.orchestration.connections import make_client, mask_secrets

        connection = await _connection(self.conn_id)
        extra = connection.extra_dejson
        mask_secrets(extra.get("session"), connection.password)
        return make_client(api_id=connection.login, api_hash=connection.password, extra=extra,
                           conn_id=self.conn_id, listening=True)


async def _connection(conn_id: str) -> Any:
    from airflow.sdk import BaseHook

    return await BaseHook.aget_connection(conn_id)


def _holder() -> str:
    """Who holds the listener's lease: this trigger in this triggerer process (host, pid, a token)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


TELEGRAM_UPDATES = Asset("telegram.updates", watchers=[
    AssetWatcher(name="telegram_updates_listener", trigger=TelegramUpdatesTrigger())])
