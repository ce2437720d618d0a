"""The listener's debounce: an album's items make one hint, after the channel is quiet."""

import math

from include.album.source.updates import Debouncer, Hint


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
