"""
# telegram_albums

Every 5 minutes: mirror the subscribed Telegram channels into Postgres and S3, group their
messages into albums, and analyse, summarise and publish every album that is new or changed.

```
migrate ─► changed_channels ─► ingest[unit] ─┬─► albums_ready ─► album[unit] ─┬─► report
                                             └─► index_posts ─────────────────┘
album[unit] = vision ─► summary ─► enrich ─► index
```

* **migrate** applies `include/sql/migrations` (idempotent, tracked in `schema_migrations`).
* **changed_channels** asks Telegram which subscribed channels have messages above their
  high-water mark: one `messages.getPeerDialogs` per 100 channels in the account's dialogs
  (each dialog carries the channel's newest message id), one small probe per channel outside
  them. Only those channels are pulled, so a quiet window costs a few requests however many
  channels there are. A run made by `airflow backfill create` pulls every channel instead.
* **ingest** (mapped per unit of changed channels, labelled with what it holds: `@username`
  for a unit of one) pulls each channel's new messages over one Telegram connection — or, in a
  backfill run, the messages dated in the run's data interval — stores their media in S3
  (content-addressed, HEAD before PUT), upserts posts, regroups their albums and advances the
  mark, one transaction per channel. A channel that fails for its own sake is recorded on its
  row (`channels.last_error`, `python -m include.album channels list`, alert
  `TelegramChannelsFailing`) and pulled again by the next run; the others go on. It returns
  the ids of albums that are new or whose composition changed, and emits the Asset
  `albums.parsed`. The 1-slot pool `telegram` keeps one Telegram session in use at a time.
* **albums_ready** adds the albums still waiting or partial from earlier runs.
* **album** (a task group mapped per album, labelled `@channel album <id>` in the UI): **vision** analyses
  each item image not yet in the vision cache (videos through their preview; other
  documents are skipped with a reason), **summary** aggregates in position order once every
  item has a result or a terminal skip (or, after `assembly_timeout_minutes`, as `partial`,
  completed by a later run), **enrich** writes one S3 summary per subscribed tenant, then
  `media_groups.meta->'enrichment'` and `status`, and emits the Asset `album.assembled` with
  the album id in the event's extra; **index** writes the album point (caption + summary + OCR)
  and its item posts to Qdrant (`album_id` in the payload, stale item points removed) and the
  album, its posts in position order and its labels to the graph (Neo4j or FalkorDB). Clear
  one album's group in the UI to redo just that album.
* **index_posts** indexes posts outside albums (text + the vision text of their image) and
  takes what was deleted on Telegram out of S3, Qdrant and the graph. Index writes go through
  the pool `album_index`: give it 1 slot with Qdrant's embedded local mode (one process at a
  time), more with a Qdrant server.
* Units: up to `channels_mapped_per_run` changed channels and `albums_mapped_per_run` albums
  (default 8 each), each gets a task instance of its own; beyond, they are split into that
  many units of several (labelled `N channels @a, @b, …` and `N albums 12, 15, …`) that do
  the same work in a loop, so the number of task instances, and Airflow's cost per task,
  stays bounded by settings however many channels change and albums arrive.
* **report** logs totals (albums by status, vision calls and albums/posts indexed this run)
  and sets the gauges of albums by status and of the oldest pending album.

Alerting: a **Deadline Alert** fires when a run is not finished `TELEGRAM_ALBUMS_DEADLINE_SECONDS`
(default 900) after it was queued; its callback (`plugins/telegram_albums_alerts.py`) logs the
run, counts `telegram_albums_deadline_missed_total` and posts to the optional webhook
connection `albums_alert_webhook` — only for runs still queued or running. Tasks have
`execution_timeout`s and the run a `dagrun_timeout`. Pipeline metrics go through Airflow's
StatsD client (`include/album/metrics.py`; mapping and alert rules in `monitoring/`).

Failures: every task retries 3 times with exponential backoff. Album steps run each album of
a unit on its own: an album that fails every try is quarantined with its error (`python -m
include.album quarantine list|requeue`) and the others go on; a service outage fails the
task instead (no quarantine) and the next run picks the albums up. Edits and deletions are
caught by the daily `telegram_albums_refresh` DAG.

Queues (CeleryExecutor; the LocalExecutor ignores them): **ingest** on `telegram`, **vision**
on `vision`, **index** and **index_posts** on `index`, the rest on Airflow's default queue;
names from env `TELEGRAM_ALBUMS_{TELEGRAM,VISION,INDEX}_QUEUE` (docs/scaling.md).

Long FloodWaits defer a channel (`channels.flood_wait_until`); a later run pulls its messages,
nothing is skipped. Settings: Airflow Variable `telegram_albums_settings` (fields and defaults
in `include/album/settings.py`); vision concurrency per run: env
`TELEGRAM_ALBUMS_VISION_CONCURRENCY` (default 4). Connections: `albums_db`, `albums_s3`,
`telegram_default`, `albums_qdrant`, optional `albums_graph`, `albums_redis`, `vision_openai`,
`embeddings_openai`.
"""

from datetime import UTC, datetime, timedelta

from airflow.sdk import (
    Asset,
    AsyncCallback,
    CronTriggerTimetable,
    DeadlineAlert,
    DeadlineReference,
    dag,
    get_current_context,
    task,
    task_group,
)

from include.album import tasks
from include.album.settings import (
    DEADLINE_SECONDS,
    INDEX_POOL,
    INDEX_QUEUE,
    TASK_DEFAULTS,
    TELEGRAM_POOL,
    TELEGRAM_QUEUE,
    VISION_CONCURRENCY,
    VISION_QUEUE,
)

ALBUMS_PARSED = Asset("albums.parsed")
ALBUM_ASSEMBLED = Asset("album.assembled")


@dag(
    dag_id="telegram_albums",
    schedule=CronTriggerTimetable("*/5 * * * *", timezone="UTC", interval=timedelta(minutes=5)),
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(minutes=60),
    deadline=DeadlineAlert(
        reference=DeadlineReference.DAGRUN_QUEUED_AT,
        interval=timedelta(seconds=DEADLINE_SECONDS),
        callback=AsyncCallback("telegram_albums_alerts.on_deadline_missed"),  # plugins/, runs in the triggerer
    ),
    default_args=TASK_DEFAULTS,
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

    @task(trigger_rule="none_failed")  # also when no channel changed: albums still waiting are due
    def albums_ready(per_unit: list[list[int]]) -> list[list[int]]:
        return tasks.albums_ready(per_unit)

    @task_group
    def album(album_ids: list[int]):
        @task(queue=VISION_QUEUE, map_index_template="{{ album_label }}",
              max_active_tis_per_dagrun=VISION_CONCURRENCY, execution_timeout=timedelta(minutes=30))
        def vision(album_ids: list[int]) -> list[int]:
            return tasks.album_step(album_ids, get_current_context(), "vision")

        @task(map_index_template="{{ album_label }}", execution_timeout=timedelta(minutes=10))
        def summary(album_ids: list[int]) -> list[int]:
            return tasks.album_step(album_ids, get_current_context(), "summary")

        @task(map_index_template="{{ album_label }}", outlets=[ALBUM_ASSEMBLED],
              execution_timeout=timedelta(minutes=10))
        def enrich(album_ids: list[int]) -> list[int]:
            return tasks.album_step(album_ids, get_current_context(), "enrich", outlet=ALBUM_ASSEMBLED)

        @task(map_index_template="{{ album_label }}", pool=INDEX_POOL, queue=INDEX_QUEUE,
              execution_timeout=timedelta(minutes=15))
        def index(album_ids: list[int]) -> list[int]:
            return tasks.album_step(album_ids, get_current_context(), "index")

        return index(enrich(summary(vision(album_ids))))

    @task(pool=INDEX_POOL, queue=INDEX_QUEUE, trigger_rule="none_failed", execution_timeout=timedelta(minutes=30))
    def index_posts() -> dict[str, int]:
        return tasks.index_posts()

    @task(trigger_rule="none_failed", multiple_outputs=False)
    def report() -> dict[str, int]:
        return tasks.report(get_current_context()["dag_run"].start_date)

    units = changed_channels()
    migrate() >> units
    ingested = ingest.expand(channel_ids=units)
    [album.expand(album_ids=albums_ready(ingested)), ingested >> index_posts()] >> report()


telegram_albums()
