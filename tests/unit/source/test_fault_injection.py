"""Telegram's own errors, injected in the archive transport: Telethon maps them to the classes a
live client raises, per channel and RPC, once, N times or always; renames are manifest edits."""


import pytest
from telethon import errors, functions, types

from devtools.archive_edits import rename_channel
from devtools.sample import LAB, NEWS
from include.album.domain.models import Channel
from include.album.domain.settings import ConfigurationError
from include.album.orchestration.connections import make_client
from include.album.source.archive import ArchiveTelegramClient, Fault
from include.album.source.changes import newest_message_ids
from include.album.source.client import REQUEST_RETRIES
from include.album.source.failures import Meaning, SessionUnusable, error_name, is_server_error, meaning
from tests.helpers import run

LAB_PEER = types.InputPeerChannel(LAB, 5000000000000000001)
NEWS_PEER = types.InputPeerChannel(NEWS, 5000000000000000002)


def client_with(archive, *faults: dict, **options) -> ArchiveTelegramClient:
    return ArchiveTelegramClient(archive, faults=[Fault.from_mapping(f) for f in faults], **options)


@pytest.mark.parametrize(("error", "policy", "cls"), [
    ("CHANNEL_PRIVATE", Meaning.CHANNEL_UNAVAILABLE, errors.ChannelPrivateError),
    ("CHANNEL_INVALID", Meaning.CHANNEL_UNAVAILABLE, errors.ChannelInvalidError),
    ("CHANNEL_BANNED", Meaning.CHANNEL_UNAVAILABLE, errors.ChannelBannedError),
    ("AUTH_KEY_UNREGISTERED", Meaning.SESSION_UNUSABLE, errors.AuthKeyUnregisteredError),
    ("SESSION_REVOKED", Meaning.SESSION_UNUSABLE, errors.SessionRevokedError),
    ("AUTH_KEY_DUPLICATED", Meaning.SESSION_UNUSABLE, errors.AuthKeyDuplicatedError),
    ("USER_DEACTIVATED", Meaning.SESSION_UNUSABLE, errors.UserDeactivatedError),
    ("FILE_REFERENCE_EXPIRED", Meaning.REFERENCE_EXPIRED, errors.FileReferenceExpiredError),
    ("FLOOD_PREMIUM_WAIT_90", Meaning.WAIT, errors.FloodPremiumWaitError),
    ("SLOWMODE_WAIT_30", Meaning.WAIT, errors.SlowModeWaitError),
    ("FILE_ID_INVALID", Meaning.MEDIA_GONE, errors.FileIdInvalidError),
    ("MSG_ID_INVALID", Meaning.PASSING, errors.MsgIdInvalidError),
])
def test_an_error_string_raises_the_class_the_live_client_would_and_the_table_knows_what_it_means(
        sample_archive, error, policy, cls):
    client = client_with(sample_archive[0], {"error": error, "channel": LAB, "rpc": "messages"},
                         flood_sleep_threshold=0)
    with pytest.raises(cls) as raised:
        run(client.get_messages(LAB_PEER, ids=[101]))
    assert meaning(raised.value) is policy
    assert error_name(raised.value) == error


def test_a_fault_after_n_requests_lets_the_first_through_and_a_preview_fault_spares_the_file(
        sample_archive, monkeypatch):
    import asyncio

    async def no_sleep(seconds, *args, **kwargs):  # Telethon's 2 s between retries of a 5xx
        return None

    monkeypatch.setattr(asyncio, "sleep", no_sleep)
    second = client_with(sample_archive[0], {"error": "FILE_ID_INVALID", "channel": LAB, "rpc": "download",
                                             "after": 1})

    async def downloads(client, ids):
        messages = await client.get_messages(LAB_PEER, ids=ids)
        return [await client.download_media(m.media, file=bytes) for m in messages]

    with pytest.raises(errors.FileIdInvalidError):
        run(downloads(second, [102, 103]))
    assert second.requests["GetFileRequest"] == 2  # the first served, the second refused

    preview = client_with(sample_archive[0], {"error": "RPC_CALL_FAIL", "channel": LAB, "rpc": "preview",
                                              "times": "always"})
    video = run(preview.get_messages(LAB_PEER, ids=[107]))[0]
    assert run(preview.download_media(video.media, file=bytes))[4:8] == b"ftyp"  # the MP4, not its preview
    with pytest.raises(errors.RpcCallFailError):
        run(preview.download_media(video.media, file=bytes, thumb=-1))


def test_flood_wait_carries_its_seconds_and_telethon_remembers_it(sample_archive):
    client = client_with(sample_archive[0], {"error": "FLOOD_WAIT_3600", "channel": LAB, "rpc": "history"})
    with pytest.raises(errors.FloodWaitError) as raised:
        run(client.get_messages(LAB_PEER, limit=1))
    assert raised.value.seconds == 3600 and error_name(raised.value) == "FLOOD_WAIT_3600"


def test_a_fault_hits_only_its_channel_and_rpc(sample_archive):
    client = client_with(sample_archive[0], {"error": "CHANNEL_PRIVATE", "channel": NEWS, "rpc": "history",
                                             "times": "always"})
    assert run(client.get_messages(LAB_PEER, limit=1))[0].id == 114  # another channel
    assert run(client.get_messages(NEWS_PEER, ids=[201]))[0].id == 201  # another RPC
    for _ in range(3):
        with pytest.raises(errors.ChannelPrivateError):
            run(client.get_messages(NEWS_PEER, limit=1))


def test_once_n_times_and_always(sample_archive):
    twice = client_with(sample_archive[0], {"error": "CHANNEL_INVALID", "channel": LAB, "times": 2})
    for _ in range(2):
        with pytest.raises(errors.ChannelInvalidError):
            run(twice.get_messages(LAB_PEER, limit=1))
    assert run(twice.get_messages(LAB_PEER, limit=1))[0].id == 114

    once = client_with(sample_archive[0], {"error": "CHANNEL_INVALID", "channel": LAB, "times": "once"})
    with pytest.raises(errors.ChannelInvalidError):
        run(once.get_messages(LAB_PEER, limit=1))
    assert run(once.get_messages(LAB_PEER, limit=1))[0].id == 114


def test_a_download_fault_is_per_channel_of_the_file(sample_archive):
    client = client_with(sample_archive[0], {"error": "FILE_REFERENCE_EXPIRED", "channel": LAB, "rpc": "download"})

    async def go():
        lab_photo = (await client.get_messages(LAB_PEER, ids=[102]))[0]
        with pytest.raises(errors.FileReferenceExpiredError):
            await client.download_media(lab_photo, file=bytes)
        return await client.download_media(lab_photo, file=bytes)  # once: the second try is served

    assert run(go())[:3] == b"\xff\xd8\xff"


def test_telegram_5xx_and_timeouts_are_retried_by_telethon_then_the_last_error_is_raised(sample_archive, monkeypatch):
    import asyncio

    slept = []

    async def no_sleep(seconds, *args, **kwargs):
        slept.append(seconds)

    monkeypatch.setattr(asyncio, "sleep", no_sleep)
    recovers = client_with(sample_archive[0], {"error": "RPC_CALL_FAIL", "channel": LAB, "times": 3})
    assert run(recovers.get_messages(LAB_PEER, limit=1))[0].id == 114
    assert slept == [2, 2, 2]

    for error, cls in (("RPC_CALL_FAIL", errors.RpcCallFailError), ("TIMEOUT", errors.TimedOutError)):
        down = client_with(sample_archive[0], {"error": error, "channel": LAB, "times": "always"})
        with pytest.raises(cls) as raised:
            run(down.get_messages(LAB_PEER, limit=1))
        assert is_server_error(raised.value) and meaning(raised.value) is Meaning.PASSING
        assert down.requests["GetHistoryRequest"] == 1 + REQUEST_RETRIES  # each try reached Telegram


def test_opening_asks_nothing_and_a_refused_session_fails_its_first_request(sample_archive):
    client = client_with(sample_archive[0], {"error": "AUTH_KEY_DUPLICATED", "rpc": "state"})
    run(client.open())
    assert client.requests == {}  # no request spent only to check the session
    with pytest.raises(errors.AuthKeyDuplicatedError) as raised:
        run(client.get_messages(LAB_PEER, ids=[101]))
    assert meaning(raised.value) is Meaning.SESSION_UNUSABLE  # the steps raise SessionUnusable on it
    message = str(SessionUnusable(client.conn_id, raised.value))
    assert "AuthKeyDuplicatedError" in message and "python -m include.album login" in message
    assert "telegram_default" in message and isinstance(SessionUnusable("x", "y"), ConfigurationError)


def test_a_5xx_on_the_first_request_is_not_mistaken_for_a_logged_out_session(sample_archive, monkeypatch):
    import asyncio

    async def no_sleep(seconds, *args, **kwargs):
        return None

    monkeypatch.setattr(asyncio, "sleep", no_sleep)
    client = client_with(sample_archive[0], {"error": "RPC_CALL_FAIL", "rpc": "state", "times": 1})
    found = run(newest_message_ids(client, [Channel(LAB, LAB_PEER.access_hash, "album_lab", "Album Lab")]))
    assert found.newest == {LAB: 114}  # Telethon retried the 500 and the session served


def test_faults_come_from_the_connection_extra_and_a_bad_one_is_a_configuration_error(sample_archive):
    extra = {"archive": str(sample_archive[0]),
             "faults": [{"error": "CHANNEL_PRIVATE", "channel": str(LAB), "rpc": ["history", "messages"]}]}
    client = make_client(api_id=None, api_hash=None, extra=extra)
    with pytest.raises(errors.ChannelPrivateError):
        run(client.get_messages(LAB_PEER, limit=1))
    for bad, says in (({"error": "X", "rpc": "upload"}, "rpc must be any or one of"),
                      ({"error": "X", "times": 0}, "times must be once, always or a positive integer"),
                      ({"error": "X", "after": -1}, "after must be a whole number"),
                      ({"channel": LAB}, "needs error"), ({"error": "X", "when": 1}, "unknown keys ['when']")):
        with pytest.raises(ConfigurationError, match="connection telegram_default: extra.faults:") as raised:
            make_client(api_id=None, api_hash=None, extra={**extra, "faults": [bad]})
        assert says in str(raised.value)


def test_a_rename_is_an_edit_of_the_manifest_that_later_answers_carry(archive_copy):
    path, _ = archive_copy
    rename_channel(path, LAB, username="album_lab_v2", title="Album Lab 2")
    client = ArchiveTelegramClient(path)
    answer = run(client(functions.messages.GetPeerDialogsRequest(peers=[types.InputDialogPeer(LAB_PEER)])))
    assert [(c.username, c.title) for c in answer.chats] == [("album_lab_v2", "Album Lab 2")]


def test_which_channels_changed_also_tells_their_current_names(archive_copy):
    from include.album.domain.models import Channel

    path, _ = archive_copy
    rename_channel(path, NEWS, username=None, title="Closed news")
    channels = [Channel(LAB, LAB_PEER.access_hash, "album_lab", "Album Lab"),
                Channel(NEWS, NEWS_PEER.access_hash, "novosti_test", "Новости тест")]
    found = run(newest_message_ids(ArchiveTelegramClient(path), channels))
    assert found.labels == {LAB: ("album_lab", "Album Lab"), NEWS: (None, "Closed news")}
