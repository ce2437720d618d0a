"""What Airflow needs when it parses the DAG files: pools, queues, retries, the deadline.

Read from the environment, because Airflow needs them before any run (the settings Variable is
read by the tasks at run time). docs/scaling.md says when to change them.
"""

from __future__ import annotations

import os
from datetime import timedelta

from include.album.domain.settings import ConfigurationError


def _whole_number(name: str, default: int) -> int:
    """A positive whole number from the environment; anything else is an error naming the variable."""
    value = os.environ.get(name, str(default))
    if not value.strip().isdigit() or int(value) < 1:
        raise ConfigurationError(f"{name}={value!r} is not a positive whole number: set it to one "
                                 f"(default {default}), or unset it")
    return int(value)


# How many vision tasks of one run may run at once.
VISION_CONCURRENCY = _whole_number("TELEGRAM_ALBUMS_VISION_CONCURRENCY", 4)
# The pool index writes go through. Qdrant's embedded local mode (a path) allows one process at
# a time: give the pool 1 slot then; with a Qdrant server, as many as it takes.
INDEX_POOL = os.environ.get("TELEGRAM_ALBUMS_INDEX_POOL", "album_index")
# One Telegram session in use at a time across the deployment (two = AUTH_KEY_DUPLICATED).
TELEGRAM_POOL = "telegram"
# The pools the DAGs use, with the slots of a single-machine deployment.
POOLS = {TELEGRAM_POOL: 1, INDEX_POOL: 1}
# Celery queues by resource (the LocalExecutor ignores queues): the tasks holding the Telegram
# session, the vision tasks (CPU or GPU workers) and the index writers; every other task goes
# to Airflow's default queue ([operators] default_queue, "default").
TELEGRAM_QUEUE = os.environ.get("TELEGRAM_ALBUMS_TELEGRAM_QUEUE", "telegram")
VISION_QUEUE = os.environ.get("TELEGRAM_ALBUMS_VISION_QUEUE", "vision")
INDEX_QUEUE = os.environ.get("TELEGRAM_ALBUMS_INDEX_QUEUE", "index")
# Deadline Alert: a run not finished this long after it was queued is reported as late.
DEADLINE_SECONDS = _whole_number("TELEGRAM_ALBUMS_DEADLINE_SECONDS", 900)

# The live DAG's tasks go before history's wherever both wait (the scheduler fills a free pool
# or executor slot by priority), and history runs one instance of each of its tasks at a time
# over all its runs (a backfill starts up to 10 at once): a fresh post never waits long behind
# an import.
LIVE_PRIORITY = {"priority_weight": 100, "weight_rule": "absolute"}
HISTORY_PRIORITY = {"priority_weight": 1, "weight_rule": "absolute", "max_active_tis_per_dag": 1}

# Every task of every DAG: bounded retries with exponential backoff (30 s, 60 s, 120 s).
TASK_DEFAULTS = {
    "owner": "data-platform",
    "retries": 3,
    "retry_delay": timedelta(seconds=30),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(minutes=10),
}
