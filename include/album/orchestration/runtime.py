"""What every task body shares: configuration errors fail once, the last try, the run's ids,
and Telegram's request counts.

Every body is ``@task_body``: a configuration error (a settings Variable of the wrong type, a
connection not defined, a Telegram session Telegram refuses) fails the task at once, without
retries, naming the cause and the fix. Outages still raise as they are, and retry.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from airflow.sdk.exceptions import AirflowFailException
from airflow.sdk.observability import stats

from include.album.domain.settings import ConfigurationError
from include.album.steps import metrics

# Every task process parses a DAG file, which imports this module: what only some tasks need
# (qdrant_client ~0.8 s, telethon ~0.4 s to import) is imported inside those tasks.
if TYPE_CHECKING:

    from include.album.source.client import PipelineClient

log = logging.getLogger(__name__)
metrics.send_to(stats)  # what the steps count goes out through Airflow's StatsD client
P = ParamSpec("P")
R = TypeVar("R")


def task_body(body: Callable[P, R]) -> Callable[P, R]:
    """Fail the task without retries on a ``ConfigurationError``: retrying cannot fix it."""

    @functools.wraps(body)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return body(*args, **kwargs)
        except ConfigurationError as exc:
            from include.album.source.failures import SessionUnusable  # (telethon: only on this path)

            if isinstance(exc, SessionUnusable):
                metrics.incr("telegram_session_unusable_total", label=exc.reason.lower())
            log.error("configuration error, not retried: %s", exc)
            raise AirflowFailException(str(exc)) from exc

    return run


def last_try(context: Mapping[str, Any]) -> bool:
    """True on the task's last try (no retry left): the moment to quarantine instead of raising."""
    ti = context.get("ti")
    return ti is None or ti.try_number > ti.max_tries


def returned_ids(per_unit: Sequence[list[int] | None]) -> list[int]:
    """The ids a mapped task's units returned, as one sorted list.

    Indexed by length: iterating Airflow's lazy XCom sequence probes one past the end (a 404 log).
    """
    return sorted({i for n in range(len(per_unit)) for i in (per_unit[n] or [])})


def report_requests(client: PipelineClient) -> None:
    """The Telegram requests a task made, by type: to its log and the metric ``telegram_requests_total``."""
    from include.album.source.client import request_kind

    for name, count in sorted(client.requests.items()):
        metrics.incr("telegram_requests_total", count, label=request_kind(name))
    log.info("Telegram requests: %s", ", ".join(f"{request_kind(n)} {c}" for n, c in sorted(client.requests.items()))
             or "none")
