"""When media whose download failed is fetched again, and when it is given up: pure rules.

A failed try is fetched again by a later run after a backoff (5 minutes, doubling, at most
6 hours), so an error that passes costs a few requests, not one every run. A wait Telegram
asked for is not a try: the media is fetched again when the wait ends. After
``media_retry_tries`` failed tries over at least ``media_retry_hours`` the media is given up:
a terminal skip with the last error.
"""

from __future__ import annotations

from datetime import datetime, timedelta

FIRST_BACKOFF = timedelta(minutes=5)
LONGEST_BACKOFF = timedelta(hours=6)


def next_try(tries: int, now: datetime) -> datetime:
    """When media that failed ``tries`` times (1 or more) is fetched again."""
    backoff = FIRST_BACKOFF * 2 ** max(tries - 1, 0)
    return now + min(backoff, LONGEST_BACKOFF)


def gives_up(tries: int, first_failed_at: datetime, now: datetime, *, max_tries: int, min_hours: int) -> bool:
    """Whether media that has now failed ``tries`` times, the first at ``first_failed_at``, is given up."""
    return tries >= max_tries and now - first_failed_at >= timedelta(hours=min_hours)
