"""The high-water mark: the highest id up to which every message is stored or recorded as a skip."""

from datetime import UTC, datetime

from include.album.domain.models import Channel, Post, PostMedia, Skip
from include.album.source.pull import Pull
from include.album.steps.ingest import Fetched, new_mark

CHANNEL = Channel(id=1, access_hash=2, username="c", title="C", hwm=9, top_message=14)


def post(message_id: int) -> tuple[Post, PostMedia]:
    return Post(channel_id=1, message_id=message_id, grouped_id=None, text="", posted_at=datetime.now(UTC)), PostMedia()


def service(message_id: int) -> Skip:
    return Skip(1, f"message:{message_id}", "service_message", "a pin")


def test_a_pull_that_covered_its_id_range_moves_the_mark_to_its_end_over_deleted_ids():
    fetched = Fetched(posts=[post(10), post(12)], skips=[service(11)])
    assert new_mark(CHANNEL, Pull(covered_to=14), fetched) == 14  # 13 and 14 came back empty: deleted


def test_a_floodwait_in_the_downloads_keeps_the_mark_below_the_first_message_left_unfetched():
    # Message 12's media hit the FloodWait: 13 (a service message) was read, but 12 is not stored.
    fetched = Fetched(posts=[post(10)], skips=[service(11), service(13)], flood_wait_seconds=600, stopped_at=12)
    assert new_mark(CHANNEL, Pull(covered_to=14), fetched) == 11


def test_a_floodwait_in_the_pull_moves_the_mark_only_over_what_arrived():
    fetched = Fetched(posts=[post(10), post(11)])
    assert new_mark(CHANNEL, Pull(covered_to=None, flood_wait_seconds=600), fetched) == 11
    assert new_mark(CHANNEL, Pull(), Fetched()) == 9  # nothing arrived: the mark stays
