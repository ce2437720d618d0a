"""
# telegram_albums_refresh

Daily: catch what changed on Telegram after ingestion — edits and deletions — and check that
S3, Qdrant and the graph still agree with Postgres, for the last `refresh_lookback_hours`
(default 48) before the run's data interval end.

```
list_channels ─► refresh[unit] ─► republish ─► reconcile
```

* **refresh** (mapped per unit of channels, as `ingest` in `telegram_albums`: one per channel up
  to `channels_mapped_per_run`; pool and queue `telegram`) re-reads, over one Telegram
  connection, the ids of each channel's live posts
  dated in the window with `get_messages(ids=...)`: an edited message is stored again (text,
  caption, replaced media), a message that comes back empty was deleted and is tombstoned
  (`posts.deleted_at`); albums they belong to are recomposed in the same transaction, and an
  album left without posts is tombstoned. Returns the recomposed album ids.
* **republish** (pool `album_index`, queue `index`) re-assembles and re-indexes those albums (vision only for
  new images), re-indexes edited posts outside albums, and takes deleted posts and albums out
  of every store: S3 summaries, Qdrant points, graph nodes.
* **reconcile** (pool `album_index`, queue `index`) compares Postgres with S3 (summaries, media), Qdrant
  (points) and the graph (Album nodes and their items) over the window, repairs what can be
  derived again, and reports drift with counts and ids in its log and the metric
  `reconcile_drift_total{kind}`.

Run it for another window with `airflow backfill create --dag-id telegram_albums_refresh ...`
or a manual run; it is idempotent (a second run finds nothing to change). It may run while a
`telegram_albums` run works on the same channels and albums: their writers wait for each other
(per-channel and per-album locks) or drop what is stale, so no update is lost. Settings and
connections: as for `telegram_albums`.
"""

from datetime import UTC, datetime, timedelta

from airflow.sdk import CronTriggerTimetable, dag, get_current_context, task

from include.album.orchestration import refresh_tasks, tasks
from include.album.orchestration.deployment import INDEX_POOL, INDEX_QUEUE, TASK_DEFAULTS, TELEGRAM_POOL, TELEGRAM_QUEUE


@dag(
    dag_id="telegram_albums_refresh",
    schedule=CronTriggerTimetable("30 3 * * *", timezone="UTC", interval=timedelta(days=1)),
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(hours=3),
    default_args=TASK_DEFAULTS,
    tags=["telegram", "albums"],
    doc_md=__doc__,
)
def telegram_albums_refresh():
    @task(execution_timeout=timedelta(minutes=2))
    def list_channels() -> list[list[int]]:
        return tasks.channel_units()

    @task(pool=TELEGRAM_POOL, queue=TELEGRAM_QUEUE, map_index_template="{{ channel_label }}",
          execution_timeout=timedelta(minutes=60))
    def refresh(channel_ids: list[int]) -> list[int]:
        return refresh_tasks.refresh(channel_ids, get_current_context())

    @task(pool=INDEX_POOL, queue=INDEX_QUEUE, execution_timeout=timedelta(minutes=60))
    def republish(per_unit: list[list[int]]) -> dict[str, int]:
        return refresh_tasks.republish(per_unit, get_current_context())

    @task(pool=INDEX_POOL, queue=INDEX_QUEUE, execution_timeout=timedelta(minutes=30))
    def reconcile() -> dict[str, int]:
        return refresh_tasks.reconcile_stores(get_current_context())

    republish(refresh.expand(channel_ids=list_channels())) >> reconcile()


telegram_albums_refresh()
