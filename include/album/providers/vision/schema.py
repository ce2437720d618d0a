"""The item schema v1: what every vision provider returns for one image, and the interface they share."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol

SCHEMA_VERSION = "v1"
KINDS = ("photo", "meme", "screenshot", "document", "infographic", "other")


class VisionProvider(Protocol):
    name: str
    model: str

    @property
    def key(self) -> str: ...

    def analyse(self, data: bytes) -> dict: ...


def analyzed_at() -> str:
    """The item's ``analyzed_at``: now, to the second."""
    return datetime.now(UTC).isoformat(timespec="seconds")
