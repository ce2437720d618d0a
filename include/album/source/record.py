"""Capture live channels into a ``telegram-archive/1`` archive, and create a session once.

``record`` works with any ``TelegramClient`` (live, or an archive client to copy an archive),
so the tests exercise the same code a user runs against Telegram.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from telethon import TelegramClient, types
from telethon.sessions import StringSession

from include.album.source.archive import ArchiveWriter
from include.album.source.messages import media_ref

log = logging.getLogger(__name__)


async def record(client: TelegramClient, channels: list[str | int], out: Path, *, limit: int | None = 200,
                 media_size_cap_bytes: int = 40 * 1024 * 1024) -> dict[int, int]:
    """Write the newest ``limit`` messages of each channel (and their media) to ``out``.

    Returns messages recorded per channel id. Media over the cap are left out of the archive
    (ingesting the archive then records them as download failures, as a live pull would not).
    """
    entities = []
    for name in channels:
        entity = await client.get_entity(name)
        if not isinstance(entity, types.Channel):
            raise ValueError(f"{name!r} is not a channel but a {type(entity).__name__}")
        entities.append(entity)
    writer = ArchiveWriter(Path(out), [
        {"id": e.id, "access_hash": e.access_hash, "username": e.username, "title": e.title} for e in entities
    ])
    counts = {}
    for entity in entities:
        peer = types.InputPeerChannel(entity.id, entity.access_hash)
        count = 0
        async for message in client.iter_messages(peer, limit=limit):
            writer.add_message(entity.id, message)
            count += 1
            await _record_media(client, writer, message, media_size_cap_bytes)
        counts[entity.id] = count
        log.info("recorded %d messages of %s", count, entity.username or entity.id)
    writer.close()
    return counts


async def _record_media(client: TelegramClient, writer: ArchiveWriter, message: Any, cap: int) -> None:
    ref = media_ref(message)
    if ref is None or not ref.downloadable:
        return
    if ref.size is not None and ref.size > cap:
        log.warning("message %s: %s of %d bytes over the cap, not recorded", message.id, ref.kind, ref.size)
        return
    data = await client.download_media(message, file=bytes)
    if data:
        writer.add_media(ref.file_id, data)
    if ref.has_thumb:
        thumb = await client.download_media(message, file=bytes, thumb=-1)
        if thumb:
            writer.add_media(ref.file_id, thumb, thumb=True)


def login(api_id: int, api_hash: str) -> str:
    """Log in interactively once (phone, code, 2FA) and return the session string.

    The string is a credential: put it in the ``telegram_default`` connection's extra
    ``session`` and nowhere else.
    """
    client = TelegramClient(StringSession(), api_id, api_hash)
    client.start()
    try:
        return client.session.save()
    finally:
        client.disconnect()
