"""The archive transport answers Telethon's real requests like Telegram would."""

import hashlib
import json
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from telethon import errors, types

from devtools.archive_edits import append_messages, deletion_marker
from devtools.sample import LAB, MIXED, NEWS, SAMPLE_START, build_sample_archive
from include.album.source.archive import ArchiveError, ArchiveTelegramClient, read_manifest
from include.album.source.record import record
from tests.helpers import flood_wait, run

PEER = types.InputPeerChannel(LAB, 5000000000000000001)


async def ids(aiter) -> list[int]:
    return [m.id async for m in aiter]


def test_iter_messages_above_a_mark_returns_newer_messages_oldest_first(sample_archive):
    client = ArchiveTelegramClient(sample_archive[0])
    assert run(ids(client.iter_messages(PEER, min_id=105, reverse=True, limit=3))) == [106, 107, 108]
    assert run(ids(client.iter_messages(PEER, min_id=0, reverse=True))) == list(range(101, 115))
    assert run(ids(client.iter_messages(PEER, min_id=114, reverse=True))) == []


def test_iter_messages_newest_first_and_by_date(sample_archive):
    client = ArchiveTelegramClient(sample_archive[0])
    assert run(ids(client.iter_messages(PEER, limit=3))) == [114, 113, 112]
    since = SAMPLE_START + timedelta(minutes=5)
    assert run(ids(client.iter_messages(PEER, offset_date=since, reverse=True)))[:2] == [106, 107]


def test_get_messages_by_ids_gives_none_for_missing_messages(sample_archive):
    client = ArchiveTelegramClient(sample_archive[0])
    found = run(client.get_messages(PEER, ids=[113, 114, 115]))
    assert [m and m.id for m in found] == [113, 114, None]


def test_download_media_serves_photo_video_and_video_thumbnail(sample_archive):
    client = ArchiveTelegramClient(sample_archive[0])

    async def go():
        photo, video = await client.get_messages(PEER, ids=[102, 107])
        return (await client.download_media(photo, file=bytes), await client.download_media(video, file=bytes),
                await client.download_media(video, file=bytes, thumb=-1))

    photo, video, thumb = run(go())
    assert photo[:3] == b"\xff\xd8\xff" and thumb[:3] == b"\xff\xd8\xff"
    assert video[4:8] == b"ftyp"


def test_missing_media_bytes_is_a_download_error_not_a_crash(archive_copy):
    path, _ = archive_copy
    client = ArchiveTelegramClient(path)
    message = run(client.get_messages(PEER, ids=[102]))[0]
    (path / "media" / str(message.media.photo.id)).unlink()
    with pytest.raises(errors.RPCError):
        run(client.download_media(message, file=bytes))


def test_as_of_hides_messages_posted_later(sample_archive):
    cut = SAMPLE_START + timedelta(minutes=10, seconds=3)
    client = ArchiveTelegramClient(sample_archive[0], as_of=cut)
    assert run(ids(client.iter_messages(PEER, min_id=110, reverse=True))) == [111, 112, 113]


def test_later_lines_are_edits_and_empty_messages_deletions(archive_copy):
    path, _ = archive_copy
    original = run(ArchiveTelegramClient(path).get_messages(PEER, ids=[101]))[0]
    edit = run(ArchiveTelegramClient(path).get_messages(PEER, ids=[101]))[0]
    edit.message, edit.edit_date = "Edited welcome", original.date + timedelta(hours=1)
    append_messages(path, LAB, [edit, deletion_marker(102)])

    now = ArchiveTelegramClient(path)
    found = run(now.get_messages(PEER, ids=[101, 102, 103]))
    assert found[0].message == "Edited welcome" and found[1] is None and found[2].id == 103
    assert 102 not in run(ids(now.iter_messages(PEER, min_id=0, reverse=True)))
    before_the_edit = ArchiveTelegramClient(path, as_of=original.date + timedelta(minutes=30))
    assert run(before_the_edit.get_messages(PEER, ids=[101]))[0].message == original.message


def test_long_flood_wait_raises_and_short_one_is_slept(sample_archive):
    long_wait = ArchiveTelegramClient(sample_archive[0], faults=[flood_wait(LAB, 3600)])
    with pytest.raises(errors.FloodWaitError) as raised:
        run(ids(long_wait.iter_messages(PEER, limit=2)))
    assert raised.value.seconds == 3600
    with pytest.raises(errors.FloodWaitError):  # Telethon remembers it for this client's lifetime
        run(ids(long_wait.iter_messages(PEER, limit=2)))

    short_wait = ArchiveTelegramClient(sample_archive[0], faults=[flood_wait(LAB, 1)],
                                       flood_sleep_threshold=60)
    started = time.monotonic()
    assert run(ids(short_wait.iter_messages(PEER, limit=2))) == [114, 113]
    assert time.monotonic() - started >= 0.9  # Telethon's own code slept it


def test_corrupt_line_is_reported_with_file_and_line(archive_copy):
    path, _ = archive_copy
    messages = path / "channels" / str(LAB) / "messages.jsonl"
    messages.write_text(messages.read_text() + '{"tl": "not base64!"}\n')
    client = ArchiveTelegramClient(path)
    assert len(run(ids(client.iter_messages(PEER, min_id=0, reverse=True)))) == 14
    [problem] = client.transport_problems(LAB)
    assert problem.reason == "corrupt_archive_line"
    assert f"channels/{LAB}/messages.jsonl line 15" in problem.detail and str(LAB) in problem.detail


def test_layer_mismatch_names_both_layers(archive_copy):
    path, _ = archive_copy
    manifest = json.loads((path / "manifest.json").read_text())
    actual = manifest["layer"]
    manifest["layer"] = 100
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArchiveError, match=rf"layer 100.*layer {actual}"):
        read_manifest(path)


def test_unknown_format_is_rejected(tmp_path):
    (tmp_path / "manifest.json").write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(ArchiveError, match="telegram-archive/1"):
        ArchiveTelegramClient(tmp_path)


def test_sample_builder_is_deterministic(tmp_path):
    def digest(path: Path) -> dict[str, str]:
        return {str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
                for p in sorted(path.rglob("*")) if p.is_file()}

    build_sample_archive(tmp_path / "a")
    build_sample_archive(tmp_path / "b")
    assert digest(tmp_path / "a") == digest(tmp_path / "b")


def test_sample_expectation_covers_the_cases_the_old_system_got_wrong(sample_archive):
    expected = sample_archive[1]
    albums = {(a["channel_id"], a["grouped_id"]): a for a in expected["albums"]}
    assert len({a["grouped_id"] for a in expected["albums"]}) < len(albums)  # a grouped_id in two channels
    mixed = albums[(LAB, 7000000000000000002)]
    assert mixed["album_kind"] == "mixed" and mixed["caption"] == "Street food market tour"
    assert mixed["media_kinds"] == ["photo", "video", "photo", "photo"]
    assert albums[(NEWS, 7000000000000000005)]["caption"] == "Документы заседания"  # caption on the last item
    assert albums[(MIXED, 7000000000000000006)]["album_kind"] == "mixed"
    span = expected["span"]
    assert datetime.fromisoformat(span["end"]) - datetime.fromisoformat(span["start"]) >= timedelta(minutes=15)
    assert all(p["posted_at"] >= span["start"] and p["posted_at"] < span["end"] for p in expected["posts"])


def test_record_copies_channels_into_an_equivalent_archive(sample_archive, tmp_path):
    source = ArchiveTelegramClient(sample_archive[0])
    counts = run(record(source, ["album_lab", "mixed_media"], tmp_path / "copy", limit=None))
    assert counts == {LAB: 14, MIXED: 6}
    copy = ArchiveTelegramClient(tmp_path / "copy")
    assert run(ids(copy.iter_messages(PEER, min_id=0, reverse=True))) == list(range(101, 115))
    original_media = {p.name: p.read_bytes() for p in (sample_archive[0] / "media").iterdir()}
    for recorded in (tmp_path / "copy" / "media").iterdir():
        assert original_media[recorded.name] == recorded.read_bytes()
    assert len(list((tmp_path / "copy" / "media").iterdir())) > 10


def test_peer_dialogs_carry_each_channels_newest_message_as_of_the_replay_moment(sample_archive):
    from telethon import functions

    cut = SAMPLE_START + timedelta(minutes=10, seconds=3)
    client = ArchiveTelegramClient(sample_archive[0], as_of=cut)
    peers = [types.InputDialogPeer(types.InputPeerChannel(c, 5000000000000000001 + i))
             for i, c in enumerate((LAB, NEWS, MIXED))]
    answer = run(client(functions.messages.GetPeerDialogsRequest(peers=peers)))
    tops = {d.peer.channel_id: d.top_message for d in answer.dialogs}
    assert tops == {LAB: 113, NEWS: 205, MIXED: 301}
    assert sorted(m.id for m in answer.messages) == [113, 205, 301]
    assert client.requests == {"GetPeerDialogsRequest": 1}


def test_a_channel_not_joined_makes_telegram_refuse_the_whole_dialogs_call_but_its_history_reads(sample_archive):
    from telethon import functions

    client = ArchiveTelegramClient(sample_archive[0], not_joined={NEWS})
    news = types.InputPeerChannel(NEWS, 5000000000000000002)
    with pytest.raises(errors.ChannelPrivateError):
        run(client(functions.messages.GetPeerDialogsRequest(peers=[types.InputDialogPeer(PEER),
                                                                   types.InputDialogPeer(news)])))
    assert run(ids(client.iter_messages(news, limit=1))) == [212]


def test_every_request_is_counted_by_type_and_opening_a_session_asks_nothing(sample_archive):
    client = ArchiveTelegramClient(sample_archive[0])

    async def go():
        await client.open()
        await client.open()  # once per client
        [photo] = await client.get_messages(PEER, ids=[102])
        await client.download_media(photo, file=bytes)
        await client.close()

    run(go())
    assert client.requests == {"GetMessagesRequest": 1, "GetFileRequest": 1}


def test_a_live_connection_asks_neither_for_the_account_nor_for_the_update_state(monkeypatch):
    """Telethon's connect() of a StringSession would ask users.getUsers, updates.getState and
    updates.getDifference to start listening; a task's client never listens."""
    import asyncio

    from telethon.sessions import StringSession

    from include.album.source.client import PipelineClient

    client = PipelineClient(StringSession(), 1, "hash", receive_updates=False)
    sent = []

    async def connected(*args, **kwargs):
        return True

    def send(request, ordered=False):  # the connection's own handshake (InitConnection) goes here
        sent.append(request)
        future = asyncio.get_running_loop().create_future()
        future.set_result(None)
        return future

    async def no_me(*args, **kwargs):
        raise AssertionError("get_me() asked")

    monkeypatch.setattr(client._sender, "connect", connected)
    monkeypatch.setattr(client._sender, "send", send)
    monkeypatch.setattr(client, "get_me", no_me)

    async def go():
        await client.open()
        await asyncio.sleep(0)
        assert client._updates_handle.done()  # the update loop is stopped: no getDifference later either
        client._keepalive_handle.cancel()

    run(go())
    assert len(sent) == 1 and client.requests == {}  # the handshake, and no RPC
