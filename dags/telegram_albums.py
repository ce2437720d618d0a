"""
# telegram_albums

Within seconds of a post, and every 5 minutes: mirror the subscribed Telegram channels into
Postgres and S3, group their messages into albums, and analyse, summarise and publish every
album that is new or changed.

**Two ways a run starts.** The Telegram updates listener (a trigger in the triggerer, watching
the Asset `telegram.updates`, with its own session `telegram_updates`) hears a channel post and
emits an event: the run pulls the channels it heard (asset-triggered). The 5-minute schedule is
the safety net: its runs ask Telegram which channels changed and pull those — whatever the
listener missed (it is down, an update never came, an event was lost).

```
migrate ─► changed_channels ─► ingest[unit] ─┬─► albums_ready ─► album[unit] ─┬─► report
                                             └─► index_posts ─────────────────┘
album[unit] = vision ─► summary ─► enrich ─► index
```

* **migrate** applies `include/sql/migrations` (idempotent).
* **changed_channels** asks Telegram which channels have messages above their mark (one
  `messages.getPeerDialogs` per 100 channels); a backfill run takes every channel; a run the
  listener started takes the channels it heard post (no request: the hints are in Postgres).
* **ingest** (mapped per unit of changed channels) pulls the new messages — in a backfill run,
  those of the data interval — stores media in S3 and posts in Postgres, regroups albums and
  advances the mark, one transaction per channel; emits the Asset `albums.parsed`.
* **albums_ready** adds the albums still waiting or partial from earlier runs.
* **album** (mapped per album, labelled `@channel album <id>`): **vision** per item image
  (cached by sha256), **summary** once every item has a result (or `partial` after
  `assembly_timeout_minutes`), **enrich** writes the S3 summaries and Postgres enrichment and
  emits `album.assembled`, **index** writes Qdrant and the graph. Clear one album's group to
  redo just that album.
* **index_posts** indexes posts outside albums and unpublishes what was deleted on Telegram.
* **report** logs the run's totals and sets the gauges.

Up to `channels_mapped_per_run` channels and `albums_mapped_per_run` albums (8 each) get a task
instance of their own; beyond, they share that many units, so a run's task instances stay bounded.

## Operations

* **Failures.** Every task retries 3 times with exponential backoff. A channel that fails for
  its own sake is recorded on its row (`python -m include.album channels list`, alert
  `TelegramChannelsFailing`) and pulled again next run; an album that fails every try is
  quarantined (`python -m include.album quarantine list|requeue`); the others go on. A
  service outage fails the task and the next run picks the work up.
* **Waits** (`FLOOD_WAIT`, `FLOOD_PREMIUM_WAIT`, ...). Long ones defer what they concern until
  they end: a channel (`channels.flood_wait_until`), or the session's downloads or change check
  (`telegram_waits`, obeyed by every run of both DAGs); nothing is skipped.
* **Telegram's own failures** (README "When Telegram fails"). A channel Telegram refuses
  (private, banned) is set aside with its reason until re-checked or
  `python -m include.album channels enable ID`; a refused session fails `changed_channels` at
  once, without retries (`python -m include.album login`, connection `telegram_default`);
  media a download could not fetch is fetched again by later runs (its album waits), given up
  with its reason only after its tries over a day or when Telegram says the file is gone; 5xx
  answers leave the channel for the next run; renames follow.
* **Configuration errors** (a settings Variable of the wrong type, malformed JSON, a connection
  not defined) fail the first task once, naming the field or connection: fix it and clear.
* **Alerting.** A Deadline Alert fires when a run is not finished
  `TELEGRAM_ALBUMS_DEADLINE_SECONDS` (900) after it was queued (`plugins/telegram_albums_alerts.py`:
  log, metric `telegram_albums_deadline_missed_total`, optional webhook `albums_alert_webhook`).
* **Pools and queues.** Pool `telegram` (1 slot: one session at a time), pool `album_index`
  (1 slot with Qdrant's local mode); Celery queues `telegram`, `vision`, `index`, default.
* **Configuration.** Variable `telegram_albums_settings` (`include/album/domain/settings.py`);
  connections `albums_db`, `albums_s3`, `telegram_default`, `albums_qdrant`, optional
  `albums_graph`, `albums_redis`, `vision_openai`, `embeddings_openai`.

More: README (ingestion rules, albums, operations), docs/scaling.md (queues, workers, the
operating envelope), docs/reliability.md (failure modes), docs/search.md.
"""

from datetime import UTC, datetime, timedelta

from airflow.sdk import (
    AssetOrTimeSchedule,
    AsyncCallback,
    CronTriggerTimetable,
    DeadlineAlert,
    DeadlineReference,
    dag,
    get_current_context,
    task,
)

from include.album.orchestration import tasks
from include.album.orchestration.dag_parts import ALBUMS_PARSED, process_albums
from include.album.orchestration.deployment import (
    DEADLINE_SECONDS,
    LIVE_PRIORITY,
    TASK_DEFAULTS,
    TELEGRAM_POOL,
    TELEGRAM_QUEUE,
)
from include.album.orchestration.dev_loop import dev_loop
from include.album.orchestration.updates_trigger import TELEGRAM_UPDATES


@dag(
    dag_id="telegram_albums",
    schedule=AssetOrTimeSchedule(
        timetable=CronTriggerTimetable("*/5 * * * *", timezone="UTC", interval=timedelta(minutes=5)),
        assets=[TELEGRAM_UPDATES],  # the listener's events
    ),
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(minutes=60),
    deadline=DeadlineAlert(
        reference=DeadlineReference.DAGRUN_QUEUED_AT,
        interval=timedelta(seconds=DEADLINE_SECONDS),
        callback=AsyncCallback("telegram_albums_alerts.on_deadline_missed"),  # plugins/, runs in the triggerer
    ),
    default_args={**TASK_DEFAULTS, **LIVE_PRIORITY},  # ahead of history's tasks everywhere
    tags=["telegram", "albums"],
    doc_md=__doc__,
)
def telegram_albums():
    @task(execution_timeout=timedelta(minutes=5))
    def migrate() -> None:
        tasks.migrate()

    @task(pool=TELEGRAM_POOL, queue=TELEGRAM_QUEUE, execution_timeout=timedelta(minutes=10))
    def changed_channels() -> list[list[int]]:
        return tasks.changed_channels(get_current_context())

    @task(pool=TELEGRAM_POOL, queue=TELEGRAM_QUEUE, map_index_template="{{ channel_label }}",
          outlets=[ALBUMS_PARSED], execution_timeout=timedelta(minutes=30))
    def ingest(channel_ids: list[int]) -> list[int]:
        return tasks.ingest(channel_ids, get_current_context(), outlet=ALBUMS_PARSED)

    units = changed_channels()
    migrate() >> units
    process_albums(ingest.expand(channel_ids=units))


# Airflow 3.3: `airflow dags test` / dag.test() of a DAG with a Deadline Alert crash at the end
# of a successful run; the fix (active only inside test()) and its root cause: airflow_fixes.py.
dev_loop(telegram_albums())
