"""Which channels changed: each channel's newest message id from Telegram, in as few requests as it takes."""

from collections import Counter

from devtools.sample import STEADY_MARK, STEADY_WINDOW, build_steady_archive, steady_channels
from include.album.domain.models import Channel
from include.album.source.archive import ArchiveTelegramClient
from include.album.source.changes import PEER_DIALOGS_BATCH, newest_message_ids
from tests.helpers import run


def channels(count: int, **known) -> list[Channel]:
    return [Channel(id=c["id"], access_hash=c["access_hash"], username=c["username"], title=c["title"], **known)
            for c in steady_channels(count)]


def test_channels_in_the_dialogs_cost_one_request_per_batch(tmp_path):
    build_steady_archive(tmp_path, 250, 50)
    client = ArchiveTelegramClient(tmp_path, as_of=STEADY_MARK + STEADY_WINDOW)
    found = run(newest_message_ids(client, channels(250)))
    assert client.requests == {"GetPeerDialogsRequest": 3} and PEER_DIALOGS_BATCH == 100
    changed = {c for c, newest in found.newest.items() if newest > 2}  # two posts each before the mark
    assert len(changed) == 50 and len(found.newest) == 250 and not found.failed
    assert set(found.in_dialogs.values()) == {True}


def test_channels_not_joined_are_found_by_splitting_the_refused_batch_then_probed_alone(tmp_path):
    build_steady_archive(tmp_path, 100, 100)
    ids = [c.id for c in channels(100)]
    outside = {ids[7], ids[60]}
    client = ArchiveTelegramClient(tmp_path, as_of=STEADY_MARK, not_joined=outside)
    found = run(newest_message_ids(client, channels(100)))
    assert found.newest == {i: 2 for i in ids} and not found.failed
    assert {i for i, inside in found.in_dialogs.items() if not inside} == outside
    first = Counter(client.requests)
    assert first["GetHistoryRequest"] == 2  # one probe each
    assert first["GetPeerDialogsRequest"] <= 2 * 7 * len(outside) + 1  # halving down to the two peers

    # Next time they are known to be outside: one batch for the others, one probe each.
    known = [Channel(**{**c.__dict__, "in_dialogs": c.id not in outside}) for c in channels(100)]
    client = ArchiveTelegramClient(tmp_path, as_of=STEADY_MARK, not_joined=outside)
    assert run(newest_message_ids(client, known)).newest == found.newest
    assert client.requests == {"GetPeerDialogsRequest": 1, "GetHistoryRequest": 2}


def test_a_channel_that_cannot_be_read_at_all_is_reported_and_the_others_answer(tmp_path):
    build_steady_archive(tmp_path, 10, 10)
    listed = channels(10)
    gone = Channel(id=999, access_hash=1, username="gone", title="Gone")  # not in the archive: CHANNEL_INVALID
    found = run(newest_message_ids(ArchiveTelegramClient(tmp_path), [*listed, gone]))
    assert set(found.failed) == {999} and len(found.newest) == 10
    assert type(found.failed[999]).__name__ == "ChannelInvalidError"
