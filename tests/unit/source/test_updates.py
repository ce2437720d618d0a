"""The listener's debounce (an album's items make one hint, after the channel is quiet) and its
update state, which asks nothing of a channel's own."""

import asyncio
import logging
import math
from datetime import UTC, datetime

from telethon import types

from include.album.source.updates import Debouncer, Hint, HintsMessageBox


def test_an_albums_items_make_one_hint_once_the_channel_is_quiet():
    debounce = Debouncer(quiet=1, album_quiet=3, max_hold=20)
    for second, message_id in ((0, 11), (1.5, 12), (3.0, 13)):
        debounce.saw(7, message_id, grouped=True, now=second)
        assert debounce.due(second + 2.9) == []
    assert debounce.next_due() == 6.0
    assert debounce.due(6.0) == [Hint(7, 13)]
    assert len(debounce) == 0 and debounce.next_due() == math.inf


def test_a_lone_post_is_due_sooner_and_channels_are_due_apart():
    debounce = Debouncer(quiet=1, album_quiet=3, max_hold=20)
    debounce.saw(7, 5, grouped=False, now=0)
    debounce.saw(9, 40, grouped=True, now=0)
    assert debounce.due(1) == [Hint(7, 5)]
    assert debounce.due(3) == [Hint(9, 40)]


def test_a_channel_posting_without_pause_is_due_after_the_longest_hold():
    debounce = Debouncer(quiet=1, album_quiet=3, max_hold=10)
    for second in range(12):
        debounce.saw(7, 100 + second, grouped=True, now=second)
        if second == 10:
            assert debounce.due(second) == [Hint(7, 110)]


def test_a_late_older_message_keeps_the_newest_id_and_delays_the_hint():
    debounce = Debouncer(quiet=1, album_quiet=3, max_hold=20)
    debounce.saw(7, 20, grouped=False, now=0)
    debounce.saw(7, 18, grouped=False, now=0.8)  # a gap filled: an older message arrives
    assert debounce.due(1.0) == []
    assert debounce.due(1.8) == [Hint(7, 20)]


def test_a_channels_gap_is_applied_as_it_comes_and_too_long_is_named_without_a_difference():
    too_long = []
    box = HintsMessageBox(logging.getLogger("messagebox"), too_long.append)

    def update(message_id: int, pts: int) -> types.UpdateNewChannelMessage:
        message = types.Message(id=message_id, peer_id=types.PeerChannel(7), date=datetime.now(UTC), message="")
        return types.UpdateNewChannelMessage(message, pts=pts, pts_count=1)

    async def apply():
        first = box.apply_pts_info(update(10, 5), reset_deadlines=set())
        after_gap = box.apply_pts_info(update(14, 9), reset_deadlines=set())  # pts 6-8 never came
        old = box.apply_pts_info(update(12, 7), reset_deadlines=set())  # late, below what was applied
        named = box.apply_pts_info(types.UpdateChannelTooLong(channel_id=8, pts=3), reset_deadlines=set())
        return first, after_gap, old, named, box.check_deadlines()

    first, after_gap, old, named, _ = asyncio.run(apply())
    assert first.message.id == 10 and after_gap.message.id == 14  # the update after the gap is the hint
    assert old is None and named is None
    assert too_long == [8]
    assert not box.possible_gaps and not box.getting_diff_for  # no getChannelDifference to make
    assert box.map[7].pts == 9 and box.map[7].deadline == math.inf  # and no idle check of the channel
