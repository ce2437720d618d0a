"""The high-water mark: the highest id up to which every message is stored or recorded as a skip."""

from datetime import UTC, datetime

from include.album.domain.models import Channel, MediaPart, MediaRetry, Post, PostMedia, Skip
from include.album.source.failures import Wait
from include.album.source.pull import Pull
from include.album.steps.downloads import Fetched
from include.album.steps.ingest import new_mark

CHANNEL = Channel(id=1, access_hash=2, username="c", title="C", hwm=9, top_message=14)


def post(message_id: int) -> tuple[Post, PostMedia]:
    return Post(channel_id=1, message_id=message_id, grouped_id=None, text="", posted_at=datetime.now(UTC)), PostMedia()


def service(message_id: int) -> Skip:
    return Skip(1, f"message:{message_id}", "service_message", "a pin")


def test_a_pull_that_covered_its_id_range_moves_the_mark_to_its_end_over_deleted_ids():
    fetched = Fetched(posts=[post(10), post(12)], skips=[service(11)])
    assert new_mark(CHANNEL, Pull(covered_to=14), fetched) == 14  # 13 and 14 came back empty: deleted


def test_media_left_to_fetch_again_does_not_hold_the_mark_back():
    # Message 12's media met a wait: its post is stored and the media is a retry, so the mark
    # moves over it and the messages after it.
    fetched = Fetched(posts=[post(10), post(12)], skips=[service(11), service(13)], retries=[
        MediaRetry(1, 12, MediaPart.MEDIA, "FLOOD_PREMIUM_WAIT_90", tried=False, retry_after=datetime.now(UTC))])
    assert new_mark(CHANNEL, Pull(covered_to=14), fetched) == 14


def test_a_wait_in_the_pull_moves_the_mark_only_over_what_arrived():
    fetched = Fetched(posts=[post(10), post(11)])
    wait = Wait("FLOOD_WAIT_600", 600, datetime.now(UTC))
    assert new_mark(CHANNEL, Pull(covered_to=None, wait=wait), fetched) == 11
    assert new_mark(CHANNEL, Pull(covered_to=14, wait=wait), fetched) == 11  # the range was not covered whole
    assert new_mark(CHANNEL, Pull(), Fetched()) == 9  # nothing arrived: the mark stays
