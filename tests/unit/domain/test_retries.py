"""When media that failed is fetched again, and when it is given up."""

from datetime import UTC, datetime, timedelta

from include.album.domain.retries import gives_up, next_try

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


def test_the_backoff_starts_at_five_minutes_doubles_and_stops_at_six_hours():
    waits = [next_try(tries, NOW) - NOW for tries in range(1, 10)]
    assert waits[:4] == [timedelta(minutes=m) for m in (5, 10, 20, 40)]
    assert waits[-1] == timedelta(hours=6) and waits == sorted(waits)


def test_media_is_given_up_only_after_its_tries_and_a_day_both():
    day_ago = NOW - timedelta(hours=24)
    assert gives_up(8, day_ago, NOW, max_tries=8, min_hours=24)
    assert not gives_up(7, day_ago, NOW, max_tries=8, min_hours=24)  # a day, too few tries
    assert not gives_up(20, NOW - timedelta(hours=2), NOW, max_tries=8, min_hours=24)  # many tries, one outage
