"""Channels, tenants and subscriptions (managed by the CLI, read by the DAG)."""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg
from telethon import TelegramClient, types

from include.album.domain.models import validate_tenant_id
from include.album.stores import db


def add_channel(conn: psycopg.Connection, *, channel_id: int, access_hash: int, title: str,
                username: str | None = None) -> None:
    with conn.transaction():
        db.execute(conn, "channel_upsert", {"id": channel_id, "access_hash": access_hash,
                                            "username": username, "title": title})


async def resolve_channel(client: TelegramClient, name: str) -> dict:
    """Look a channel up once by username (then its id + access_hash are stored)."""
    entity = await client.get_entity(name)
    if not isinstance(entity, types.Channel):
        raise ValueError(f"{name!r} is a {type(entity).__name__}, not a channel")
    return {"channel_id": entity.id, "access_hash": entity.access_hash, "title": entity.title,
            "username": entity.username}


def deactivate_channel(conn: psycopg.Connection, channel_id: int) -> None:
    with conn.transaction():
        db.execute(conn, "channel_deactivate", {"channel_id": channel_id})


def enable_channel(conn: psycopg.Connection, channel_id: int) -> bool:
    """Take back a channel set aside as unavailable: the next run asks Telegram for it. False
    when the channel was not set aside (nothing changes)."""
    with conn.transaction():
        return db.execute(conn, "channels_available", {"channel_ids": [channel_id]}) > 0


def list_channels(conn: psycopg.Connection) -> list[dict]:
    return db.fetch_all(conn, "channel_list")


def history_line(row: dict) -> str:
    """How far back a channel's stored history reaches, and its import (``channels list``)."""
    if row["history_from_start"]:
        reach = "stored history from the channel's first message"
    elif row["history_from"] is not None:
        reach = f"stored history back to {row['history_from']:%Y-%m-%d %H:%M}"
    else:
        reach = ""
    if row["import_from"] is None:
        return reach
    asked = f"{row['import_from']:%Y-%m-%d}..{row['import_to']:%Y-%m-%d}"
    left = row["import_left"]
    state = (f"importing {asked}: {left.days} days {left.seconds // 3600} h left" if left.total_seconds() > 0
             else f"imported {asked}")
    return f"{reach}; {state}" if reach else state


def session_waits(conn: psycopg.Connection) -> list[dict]:
    """The waits Telegram gave the sessions that have not ended (every run obeys them)."""
    return db.fetch_all(conn, "telegram_waits_listed")


def channel_id_of(conn: psycopg.Connection, channel: str | int) -> int:
    """The id of a registered channel as a user names it: its id, or its ``@username`` (the ``@``
    optional); ``LookupError`` when no channel is registered under that name."""
    name = str(channel).strip()
    if name.lstrip("-").isdigit():
        shown = name
        row = db.fetch_one(conn, "channel_by_id", {"channel_id": int(name), "now": datetime.now(UTC)})
    else:
        shown = f"@{name.lstrip('@')}"
        row = db.fetch_one(conn, "channel_by_username", {"username": name.lstrip("@")})
    if row is None:
        raise LookupError(f"channel {shown} is not registered: `python -m include.album channels list` shows "
                          "the channels")
    return row["id"]


def require_tenant(conn: psycopg.Connection, tenant_id: str) -> None:
    """``LookupError`` naming the tenants there are, when ``tenant_id`` is none of them."""
    known = [row["id"] for row in db.fetch_all(conn, "tenants_all")]
    if tenant_id not in known:
        raise LookupError(f"no tenant {tenant_id!r} (tenants: {', '.join(known) or 'none yet'}; add one with "
                          f"`python -m include.album tenants add {tenant_id}`)")


def add_tenant(conn: psycopg.Connection, tenant_id: str, name: str | None = None) -> None:
    with conn.transaction():
        db.execute(conn, "tenant_upsert", {"id": validate_tenant_id(tenant_id), "name": name or tenant_id})


def subscribe(conn: psycopg.Connection, tenant_id: str, channel_id: int) -> None:
    """Subscribe a tenant to a channel; both exist (``require_tenant`` and ``channel_id_of`` check
    what a user names)."""
    with conn.transaction():
        db.execute(conn, "subscription_add", {"tenant_id": validate_tenant_id(tenant_id), "channel_id": channel_id})


def unsubscribe(conn: psycopg.Connection, tenant_id: str, channel_id: int) -> bool:
    """Remove a subscription; False when there was none (nothing changes)."""
    with conn.transaction():
        return db.execute(conn, "subscription_remove",
                          {"tenant_id": validate_tenant_id(tenant_id), "channel_id": channel_id}) > 0


def register_archive(conn: psycopg.Connection, manifest: dict, tenants: dict[str,
                     list[int]] | None = None) -> list[int]:
    """Register every channel of an archive's manifest; subscribe ``tenants`` (default: tenant
    ``default`` to all of them). Returns the channel ids."""
    channel_ids = []
    for channel in manifest["channels"]:
        add_channel(conn, channel_id=int(channel["id"]), access_hash=int(channel["access_hash"]),
                    title=channel.get("title") or str(channel["id"]), username=channel.get("username"))
        channel_ids.append(int(channel["id"]))
    for tenant_id, subscribed in (tenants or {"default": channel_ids}).items():
        add_tenant(conn, tenant_id)
        for channel_id in subscribed:
            subscribe(conn, tenant_id, int(channel_id))
    return channel_ids
