"""
# telegram_albums_history

A channel's past, a day per run. Import a month of every subscribed channel, or of some:

```bash
airflow backfill create --dag-id telegram_albums_history --from-date 2026-01-01 --to-date 2026-02-01
airflow backfill create --dag-id telegram_albums_history --from-date 2026-01-01 --to-date 2026-02-01 \\
    --dag-run-conf '{"channels": [1234567890, "@some_channel"]}'
```

```
migrate ─► history_channels ─► history[unit] ─┬─► albums_ready ─► album[unit] ─┬─► report
                                              └─► index_posts ─────────────────┘
```

* **history_channels**: the channels of the run's `--dag-run-conf` (ids or `@usernames`), else
  every subscribed channel not set aside; mapped units as in `telegram_albums`.
* **history** (mapped; pool `telegram`, after the live DAG's tasks) stores every message dated
  in the run's day (its data interval) with its media, through the same path as the live pull.
  Telegram's requests follow messages, not days: a channel's stored history remembers the time
  it holds whole (`channels.covered`, which the live pulls extend too), only what of the day is
  not held yet is asked for, 100 messages a request, and each page is kept whole, also beyond
  the day, so the next days it reached cost nothing and a quiet month costs one request. An
  album that crosses midnight is stored whole, whichever day runs first. The live marks never
  move; a message both DAGs store is one row.
* **album**, **index_posts**, **report**: the very tasks of `telegram_albums`
  (`include/album/orchestration/dag_parts.py`).

A task hands the session over after `history_requests_per_task` (20) requests or
`history_seconds_per_task` (120) seconds and is rescheduled (up for reschedule, not a
failure): the live DAG's waiting tasks, which have priority on the pool, go first, and the
import goes on where it stopped. A wait Telegram asks for during history reschedules history
alone, until the wait ends. Progress: `python -m include.album channels list` (how far back each
channel's history reaches, what is left to import) and the metric
`history_messages_imported_total`.

On its own schedule the DAG runs once a day for the day before, which the live pulls hold
already for every channel pulled all day (no request); it fills what they did not (a channel
added that day starts with its newest messages). `catchup` is off: the past is what
`airflow backfill create` is for.
"""

from datetime import UTC, datetime, timedelta

from airflow.sdk import CronTriggerTimetable, dag, get_current_context, task

from include.album.orchestration import tasks
from include.album.orchestration.dag_parts import ALBUMS_PARSED, process_albums
from include.album.orchestration.deployment import HISTORY_PRIORITY, TASK_DEFAULTS, TELEGRAM_POOL, TELEGRAM_QUEUE
from include.album.orchestration.dev_loop import dev_loop


@dag(
    dag_id="telegram_albums_history",
    schedule=CronTriggerTimetable("0 0 * * *", timezone="UTC", interval=timedelta(days=1)),
    start_date=datetime(2013, 8, 1, tzinfo=UTC),  # Telegram's first days: any past can be backfilled
    catchup=False,
    max_active_runs=1,  # days one after another: each day's pages may hold the next days
    dagrun_timeout=timedelta(hours=12),
    default_args={**TASK_DEFAULTS, **HISTORY_PRIORITY},  # after the live DAG's, one of each task at a time
    tags=["telegram", "albums", "history"],
    doc_md=__doc__,
)
def telegram_albums_history():
    @task(execution_timeout=timedelta(minutes=5))
    def migrate() -> None:
        tasks.migrate()

    @task(execution_timeout=timedelta(minutes=2))
    def history_channels() -> list[list[int]]:
        return tasks.history_units(get_current_context())

    @task(pool=TELEGRAM_POOL, queue=TELEGRAM_QUEUE, map_index_template="{{ channel_label }}",
          outlets=[ALBUMS_PARSED], execution_timeout=timedelta(minutes=10))
    def history(channel_ids: list[int]) -> list[int]:
        return tasks.history(channel_ids, get_current_context(), outlet=ALBUMS_PARSED)

    units = history_channels()
    migrate() >> units
    process_albums(history.expand(channel_ids=units))


dev_loop(telegram_albums_history())
