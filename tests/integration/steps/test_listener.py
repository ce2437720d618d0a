"""The updates listener over the archive transport (Telegram's updates pushed through Telethon's
own update handling as the clock passes each message's date) and the running Postgres: album
debounce, hints kept before they are yielded, what it heard taken by the pull instead of asked
for, reconnection with backoff, a lost update and a "too long" channel (no request of a
channel's own), a dead session, the lease (a second listener waits), the durable update state.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from devtools.sample import build_live_archive, register_sample
from include.album.source.archive import Fault
from include.album.source.archive_updates import ArchiveUpdatesClient
from include.album.source.updates import Hint
from include.album.steps.listener import ListenerConfig, UpdatesListener

pytestmark = pytest.mark.integration

FAST = ListenerConfig(quiet=0.3, album_quiet=3.5, max_hold=10, renew_seconds=1, lease_seconds=8,
                      backoff_first=0.2, backoff_max=2)


@pytest.fixture
def live(tmp_path, conn):
    """Two channels posting from a second from now: 3 albums over 6 s (items 1-3 s apart)."""
    path = tmp_path / "live"
    expected = build_live_archive(path, channels=2, start=datetime.now(UTC) + timedelta(seconds=1), minutes=0.1,
                                  albums=3, seed=3)
    register_sample(conn, expected)
    return path, expected


def listener(pg, archive: Path, *, holder: str = "test", faults: Sequence[Fault] = (),
             clients: list | None = None, config: ListenerConfig = FAST) -> UpdatesListener:
    """A listener over ``archive``; ``faults`` are Telegram's answers to its first connection."""
    made = []

    async def open_db():
        return await psycopg.AsyncConnection.connect(pg.dsn, autocommit=True)

    async def make_client():
        client = ArchiveUpdatesClient(archive, faults=() if made else faults)
        made.append(client)
        if clients is not None:
            clients.append(client)
        return client

    return UpdatesListener(open_db, make_client, holder=holder, config=config)


async def collect(source: UpdatesListener, done: Callable[[list[Hint]], bool], timeout: float = 40) -> list[Hint]:
    heard: list[Hint] = []

    async def run():
        async for batch in source.hints():
            heard.extend(batch)
            if done(heard):
                return

    await asyncio.wait_for(run(), timeout)
    return heard


def newest_of(expected: dict) -> dict[int, int]:
    newest: dict[int, int] = {}
    for post in expected["posts"]:
        newest[post["channel_id"]] = max(newest.get(post["channel_id"], 0), post["message_id"])
    return newest


def heard_all(expected: dict) -> Callable[[list[Hint]], bool]:
    wanted = newest_of(expected)
    return lambda heard: all(any(h.channel_id == c and h.newest >= n for h in heard) for c, n in wanted.items())


def test_each_album_is_one_hint_after_its_last_item_and_the_hint_is_kept_before_it_is_yielded(pg, conn, live):
    archive, expected = live
    kept_when_yielded = []

    async def run():
        heard = []
        async for batch in listener(pg, archive).hints():
            for hint in batch:  # the hint is in Postgres when the event would be sent
                row = conn.execute("SELECT top_message, hinted_at FROM channels WHERE id = %s",
                                   (hint.channel_id,)).fetchone()
                kept_when_yielded.append(row["top_message"] >= hint.newest and row["hinted_at"] is not None)
            heard.extend(batch)
            if heard_all(expected)(heard):
                return heard

    heard = asyncio.run(asyncio.wait_for(run(), 40))
    assert all(kept_when_yielded)
    album_ends = {(a["channel_id"], a["message_ids"][-1]) for a in expected["live"]}
    album_items = {(a["channel_id"], m) for a in expected["live"] for m in a["message_ids"][:-1]}
    hinted = {(h.channel_id, h.newest) for h in heard}
    assert not hinted & album_items, "a hint named an album's item before its last one"
    assert {end for end in album_ends if any(c == end[0] and n >= end[1] for c, n in hinted)} == album_ends
    assert len(heard) <= len(expected["live"]) + 3  # an album a hint, at most a text post after some


def test_a_dropped_connection_is_listened_to_again_and_what_it_missed_is_heard(pg, live, caplog):
    archive, expected = live
    clients = []
    with caplog.at_level(logging.INFO):
        heard = asyncio.run(collect(listener(pg, archive, faults=[Fault("DISCONNECT", after=2)], clients=clients),
                                    heard_all(expected)))
    assert len(clients) >= 2  # a new connection after the drop
    assert "listening again in" in caplog.text
    assert heard_all(expected)(heard)
    assert clients[1].requests["GetDifferenceRequest"] == 1  # it caught up from the state the first one kept
    assert clients[1].requests["GetChannelDifferenceRequest"] == 0  # what it missed, named "too long"


def test_a_lost_update_and_a_too_long_channel_are_heard_without_asking_for_a_channel_difference(pg, live, caplog):
    archive, expected = live
    gap_channel, too_long_channel = sorted(newest_of(expected))
    faults = [Fault("GAP", channel=gap_channel, after=1), Fault("CHANNEL_TOO_LONG", channel=too_long_channel)]
    clients = []
    with caplog.at_level(logging.INFO):
        heard = asyncio.run(collect(listener(pg, archive, faults=faults, clients=clients), heard_all(expected)))
    assert heard_all(expected)(heard)
    assert "fault GAP" in caplog.text and "fault CHANNEL_TOO_LONG" in caplog.text
    # The update after the lost one is the hint; the "too long" channel's newest id is asked for
    # with the account's dialogs (one request per 100 channels), not a difference per channel.
    assert clients[0].requests["GetChannelDifferenceRequest"] == 0
    assert clients[0].requests["GetPeerDialogsRequest"] == 1
    assert "more news than it sent ('too long')" in caplog.text


def test_a_dead_session_is_retried_at_the_longest_backoff_with_the_fix_in_the_log(pg, live, caplog):
    archive, expected = live
    config = ListenerConfig(**{**FAST.__dict__, "backoff_max": 1.0})
    source = listener(pg, archive, faults=[Fault("AUTH_KEY_UNREGISTERED", rpcs=frozenset({"state"}))], config=config)
    with caplog.at_level(logging.INFO):
        heard = asyncio.run(collect(source, heard_all(expected)))
    assert heard_all(expected)(heard)  # the session made anew (no fault) hears everything
    assert "login --conn-id telegram_updates" in caplog.text
    assert "listening again in 1 s" in caplog.text  # the longest backoff at once


def test_a_second_listener_waits_for_the_lease_and_takes_over_when_the_first_stops(pg, conn, live):
    archive, expected = live
    first_clients, second_clients = [], []
    overlap = []

    async def run():
        first = asyncio.create_task(collect(listener(pg, archive, holder="first", clients=first_clients),
                                            lambda heard: False, timeout=60))
        await asyncio.sleep(1.0)
        second_heard: list[Hint] = []

        async def second():
            async for batch in listener(pg, archive, holder="second", clients=second_clients).hints():
                overlap.append(any(c.is_connected() for c in first_clients))
                second_heard.extend(batch)
                if heard_all(expected)(second_heard):
                    return

        waiting = asyncio.create_task(second())
        await asyncio.sleep(2.0)
        assert second_clients == []  # waiting for the lease, not connected
        first.cancel()  # the first listener stops (its trigger is cancelled): it releases the lease
        await asyncio.wait_for(waiting, 40)
        return second_heard

    heard = asyncio.run(run())
    assert second_clients and not any(overlap)
    assert conn.execute("SELECT holder FROM telegram_listeners").fetchone()["holder"] == "second"
    assert heard  # (what the second heard: the channels that posted after it took over)


def test_the_update_state_is_kept_and_the_next_listener_starts_from_it(pg, conn, live):
    archive, expected = live
    asyncio.run(collect(listener(pg, archive), lambda heard: len(heard) >= 1))
    state = conn.execute("SELECT update_state FROM telegram_listeners").fetchone()["update_state"]
    assert state["channels"]  # each channel heard has its pts
    clients = []
    started = time.monotonic()
    heard = asyncio.run(collect(listener(pg, archive, clients=clients), heard_all(expected)))
    assert heard_all(expected)(heard) and time.monotonic() - started < 40
    assert clients[0].requests["GetStateRequest"] == 0  # no new state asked for: the kept one was loaded


def test_a_run_the_listener_started_pulls_the_channels_heard_above_their_mark_and_nothing_else(conn, sample_archive):
    from devtools.sample import LAB, MIXED, NEWS
    from include.album.domain.settings import Settings
    from include.album.steps.change_check import find_hinted_channels
    from include.album.stores import db

    register_sample(conn, sample_archive[1])
    conn.execute("UPDATE channels SET hwm = 100")
    settings = Settings()

    def hear(*hints: tuple[int, int]) -> None:
        db.execute(conn, "channels_hinted", {"channel_ids": [c for c, _ in hints], "newest": [n for _, n in hints]})

    assert find_hinted_channels(conn, settings) == []  # nothing heard, nothing asked
    hear((LAB, 105), (NEWS, 100))  # NEWS's hint is at its mark: already pulled
    hear((LAB, 103))  # a late, lower hint changes nothing
    assert find_hinted_channels(conn, settings) == [LAB]
    assert conn.execute("SELECT top_message FROM channels WHERE id = %s", (LAB,)).fetchone()["top_message"] == 105
    conn.execute("UPDATE channels SET last_error = 'x', last_error_at = now() + interval '1 second' WHERE id = %s",
                 (LAB,))
    hear((MIXED, 101))
    assert find_hinted_channels(conn, settings) == [MIXED]  # LAB failed since it was heard: the schedule's
    conn.execute("UPDATE channels SET last_error_at = now() - interval '1 minute' WHERE id = %s", (LAB,))
    hear((LAB, 106))
    assert find_hinted_channels(conn, settings) == [LAB, MIXED]  # heard again after failing


def test_a_pull_takes_the_messages_the_listener_heard_and_asks_only_for_those_it_did_not(pg, conn, live, store,
                                                                                          settings):
    from include.album.source.archive import ArchiveTelegramClient
    from include.album.steps.change_check import find_hinted_channels
    from include.album.steps.ingest import ingest_channels

    archive, expected = live
    conn.execute("UPDATE channels SET hwm = 1")  # each channel's earlier post was pulled before
    asyncio.run(collect(listener(pg, archive), heard_all(expected)))
    posted = {(p["channel_id"], p["message_id"]) for p in expected["posts"] if p["message_id"] > 1}
    kept = {(r["channel_id"], r["message_id"]) for r in conn.execute("SELECT * FROM heard_messages").fetchall()}
    assert kept == posted  # every message heard is kept, before its hint
    unheard = expected["live"][0]  # say the listener missed this album's first item
    conn.execute("DELETE FROM heard_messages WHERE channel_id = %s AND message_id = %s",
                 (unheard["channel_id"], unheard["message_ids"][0]))

    client = ArchiveTelegramClient(archive)
    results = ingest_channels(conn, store, client, find_hinted_channels(conn, settings), settings)
    assert not any(r.error for r in results)
    stored = {(r["channel_id"], r["message_id"]) for r in conn.execute(
        "SELECT channel_id, message_id FROM posts WHERE message_id > 1").fetchall()}
    assert stored == posted
    assert client.requests["GetMessagesRequest"] == 1  # the missed item only, in one request
    assert client.requests["GetFileRequest"] == sum(len(a["message_ids"]) for a in expected["live"])
    assert conn.execute("SELECT count(*) AS n FROM heard_messages").fetchone()["n"] == 0  # forgotten: pulled


def test_edits_and_deletions_heard_before_the_pull_change_what_it_takes(pg, conn, live):
    from telethon import types
    from telethon.extensions import BinaryReader

    from include.album.steps.listener import HeardMessages

    archive, expected = live
    conn.execute("UPDATE channels SET hwm = 1")
    channel, (first, second, *_) = expected["live"][0]["channel_id"], expected["live"][0]["message_ids"]
    client = ArchiveUpdatesClient(archive)
    originals = {m.id: m for m in client.archive.posts(channel).messages}
    heard, deleted = HeardMessages(), []
    client.listen({channel: 1}, None, on_message=lambda c, m, new: heard.keep(c, m),
                  on_deleted=lambda c, ids: (deleted.append(ids), heard.forget(c, ids)), on_too_long=lambda c: None)
    edited = types.Message(id=first, peer_id=types.PeerChannel(channel), date=originals[first].date,
                           message="edited before the pull", edit_date=datetime.now(UTC))
    stale = types.Message(id=1, peer_id=types.PeerChannel(channel), date=originals[1].date, message="pulled long ago")

    async def hear():
        for update in (types.UpdateNewChannelMessage(originals[first], pts=2, pts_count=1),
                       types.UpdateNewChannelMessage(originals[second], pts=3, pts_count=1),
                       types.UpdateEditChannelMessage(edited, pts=4, pts_count=1),
                       types.UpdateDeleteChannelMessages(channel, [second], pts=5, pts_count=1),
                       types.UpdateEditChannelMessage(stale, pts=6, pts_count=1)):
            await client._heard(update)
        async with await psycopg.AsyncConnection.connect(pg.dsn, autocommit=True) as db_conn:
            await heard.write(db_conn)

    asyncio.run(hear())
    assert deleted == [[second]]
    rows = conn.execute("SELECT message_id, message FROM heard_messages").fetchall()
    kept = {r["message_id"]: BinaryReader(r["message"]).tgread_object() for r in rows}
    assert list(kept) == [first]  # the deleted one forgotten; an edit of a pulled post is the refresh's
    assert kept[first].message == "edited before the pull"
