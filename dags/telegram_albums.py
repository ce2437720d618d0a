"""
# telegram_albums

Every 5 minutes: mirror the subscribed Telegram channels into Postgres and S3, album-aware.

```
migrate ─► list_channels ─► ingest (mapped per channel, pool `telegram`) ─► albums_ready ─► report
```

* **migrate** applies `include/sql/migrations` (idempotent, tracked in `schema_migrations`).
* **list_channels** returns the ids of active channels with at least one subscribing tenant.
* **ingest** (one mapped task per channel, labelled with the channel's username) pulls the
  messages above the channel's high-water mark — or, in a run made by
  `airflow backfill create`, the messages dated in the run's data interval — downloads their
  media into S3 (content-addressed, HEAD before PUT), upserts posts, regroups the albums they
  belong to and advances the mark in one transaction. It returns only the ids of albums that
  are new or whose composition changed. The 1-slot pool `telegram` keeps one Telegram session
  in use at a time (two would kill it with AUTH_KEY_DUPLICATED).
* **albums_ready** merges those ids; **report** logs the totals.

Long FloodWaits defer a channel (`channels.flood_wait_until`); its messages are pulled by a
later run, nothing is skipped. Settings: Airflow Variable `telegram_albums_settings`
(see `include/album/settings.py`). Connections: `albums_db`, `albums_s3`, `telegram_default`.
"""

from datetime import UTC, datetime, timedelta

from airflow.sdk import CronTriggerTimetable, dag, get_current_context, task

from include.album import tasks

TELEGRAM_POOL = "telegram"


@dag(
    dag_id="telegram_albums",
    schedule=CronTriggerTimetable("*/5 * * * *", timezone="UTC", interval=timedelta(minutes=5)),
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(minutes=60),
    default_args={
        "owner": "data-platform",
        "retries": 3,
        "retry_delay": timedelta(seconds=30),
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(minutes=10),
    },
    tags=["telegram", "albums"],
    doc_md=__doc__,
)
def telegram_albums():
    @task(execution_timeout=timedelta(minutes=5))
    def migrate() -> None:
        tasks.migrate()

    @task(execution_timeout=timedelta(minutes=2))
    def list_channels() -> list[int]:
        return tasks.channels_to_pull()

    @task(pool=TELEGRAM_POOL, map_index_template="{{ channel_label }}", execution_timeout=timedelta(minutes=30))
    def ingest(channel_id: int) -> list[int]:
        return tasks.ingest(channel_id, get_current_context())

    @task
    def albums_ready(per_channel: list[list[int]]) -> list[int]:
        return tasks.albums_ready(per_channel)

    @task
    def report(album_ids: list[int]) -> dict[str, int]:
        return tasks.report(album_ids)

    channels = list_channels()
    migrate() >> channels
    report(albums_ready(ingest.expand(channel_id=channels)))


telegram_albums()
