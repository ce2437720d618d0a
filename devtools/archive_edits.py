"""Edits of a ``telegram-archive/1`` archive after it was written: what Telegram changed since.

Tests and benchmarks use them to replay a channel's later life over the archive transport:
later versions of messages (an edit, or ``deletion_marker`` for a deletion) appended to a
channel's history, a channel renamed in the manifest, another archive's channels added.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from telethon import types

from include.album.source.archive_format import encode_message, read_manifest


def deletion_marker(message_id: int) -> Any:
    """The archive line content that records ``message_id`` as deleted (a plain ``messageEmpty``)."""
    return types.MessageEmpty.__bases__[1](id=message_id)


def rename_channel(path: Path, channel_id: int, *, username: str | None, title: str) -> None:
    """The channel as Telegram shows it after its owner renamed it (clients made afterwards see it)."""
    manifest_path = Path(path) / "manifest.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    entry = next(c for c in manifest["channels"] if int(c["id"]) == channel_id)
    entry.update(username=username, title=title)
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")


def add_channels(path: Path, source: Path) -> None:
    """Add the channels of the archive at ``source`` (their messages and media) to the one at ``path``."""
    path, source = Path(path), Path(source)
    manifest, extra = read_manifest(path), read_manifest(source)
    known = {int(c["id"]) for c in manifest["channels"]}
    manifest["channels"] += [c for c in extra["channels"] if int(c["id"]) not in known]
    for folder in ("channels", "media"):
        shutil.copytree(source / folder, path / folder, dirs_exist_ok=True)
    (path / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")


def append_messages(path: Path, channel_id: int, messages: list[Any]) -> None:
    """Append later versions to a channel's history: edited messages, or ``deletion_marker(id)``."""
    file = Path(path) / "channels" / str(channel_id) / "messages.jsonl"
    with file.open("a", encoding="utf-8") as handle:
        handle.writelines(encode_message(m) + "\n" for m in messages)
