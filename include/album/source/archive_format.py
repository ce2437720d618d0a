"""The archive format ``telegram-archive/1`` on disk: its manifest, its lines, its writer.

An archive is a directory::

    manifest.json                          format, telethon version, TL layer, channels
    channels/<channel_id>/messages.jsonl   {"tl": base64(bytes(telethon Message))} per line
    media/<photo_or_document_id>           raw bytes served to upload.GetFile
    media/<document_id>.thumb              optional thumbnail bytes (video preview)

A channel's lines are its history as recorded, in order: a later line for the same message id
is a later version of it (an edit; its ``edit_date`` says when), and a ``MessageEmpty`` line
means the message was deleted from Telegram. ``archive.ArchiveSender`` answers from them.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import telethon
from telethon import types
from telethon.extensions import BinaryReader
from telethon.tl.alltlobjects import LAYER

ARCHIVE_FORMAT = "telegram-archive/1"


class ArchiveError(Exception):
    """The archive cannot be used at all (wrong format, wrong layer, missing manifest)."""


def read_manifest(path: Path) -> dict:
    manifest_path = Path(path) / "manifest.json"
    if not manifest_path.is_file():
        raise ArchiveError(f"{path} is not a {ARCHIVE_FORMAT} archive: manifest.json is missing (give the "
                           "directory `python -m include.album record` wrote)")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArchiveError(f"{manifest_path} cannot be read ({exc}): re-record the archive or restore the file") \
            from None
    if not isinstance(manifest, dict):
        raise ArchiveError(f"{manifest_path} is not a JSON object: re-record the archive or restore the file")
    if manifest.get("format") != ARCHIVE_FORMAT:
        raise ArchiveError(
            f"{manifest_path}: format is {manifest.get('format')!r}, expected {ARCHIVE_FORMAT!r}"
        )
    if manifest.get("layer") != LAYER:
        raise ArchiveError(
            f"{manifest_path}: archive was recorded with Telegram layer {manifest.get('layer')} "
            f"(telethon {manifest.get('telethon')}), but the installed telethon {telethon.__version__} "
            f"speaks layer {LAYER}; re-record the archive or install the matching telethon"
        )
    return manifest


def encode_message(message: Any) -> str:
    return json.dumps({"tl": base64.b64encode(bytes(message)).decode("ascii")})


def decode_message(line: str) -> Any:
    data = base64.b64decode(json.loads(line)["tl"], validate=True)
    obj = BinaryReader(data).tgread_object()
    if not isinstance(obj, (types.Message, types.MessageService, types.MessageEmpty)):
        raise ValueError(f"not a message but {type(obj).__name__}")
    return obj


class ArchiveWriter:
    """Writes an archive; used by the sample builder, the tests and ``record``."""

    def __init__(self, path: Path, channels: list[dict]):
        self.path = Path(path)
        self.channels = channels
        (self.path / "media").mkdir(parents=True, exist_ok=True)
        self._lines: dict[int, list[str]] = {int(c["id"]): [] for c in channels}

    def add_message(self, channel_id: int, message: Any) -> None:
        self._lines[channel_id].append(encode_message(message))

    def add_media(self, file_id: int, data: bytes, *, thumb: bool = False) -> None:
        name = f"{file_id}.thumb" if thumb else str(file_id)
        (self.path / "media" / name).write_bytes(data)

    def close(self) -> None:
        manifest = {
            "format": ARCHIVE_FORMAT,
            "telethon": telethon.__version__,
            "layer": LAYER,
            "channels": self.channels,
        }
        (self.path / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        for channel_id, lines in self._lines.items():
            channel_dir = self.path / "channels" / str(channel_id)
            channel_dir.mkdir(parents=True, exist_ok=True)
            (channel_dir / "messages.jsonl").write_text("".join(line + "\n" for line in lines), encoding="utf-8")
