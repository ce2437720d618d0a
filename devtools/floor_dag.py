"""
# telegram_albums_floor

Airflow's own floor for the benchmark: a DAG shaped like `telegram_albums` (the same tasks,
pools, mapping and trigger rules) whose tasks do nothing. Its wall time on a stack is what
Airflow alone costs to schedule and run that many task instances there.

Not a DAG of the product: it is not in `dags/`; the benchmark links it into its own stack's
DAGs folder. A run's conf sets the mapping: `{"ingest_units": K, "album_units": M}`.
"""

from datetime import UTC, datetime

from airflow.sdk import dag, get_current_context, task, task_group

from include.album.orchestration.deployment import INDEX_POOL, TASK_DEFAULTS, TELEGRAM_POOL, VISION_CONCURRENCY


def _conf(key: str) -> int:
    return int(get_current_context()["dag_run"].conf[key])


@dag(dag_id="telegram_albums_floor", schedule=None, start_date=datetime(2026, 1, 1, tzinfo=UTC), catchup=False,
     max_active_runs=1, default_args=TASK_DEFAULTS, tags=["benchmark"], doc_md=__doc__)
def telegram_albums_floor():
    @task
    def migrate() -> None:
        return None

    @task(pool=TELEGRAM_POOL)
    def changed_channels() -> list[int]:
        return list(range(_conf("ingest_units")))

    @task(pool=TELEGRAM_POOL)
    def ingest(unit: int) -> list[int]:
        return [unit]

    @task
    def albums_ready(per_unit: list[list[int]]) -> list[int]:
        return list(range(_conf("album_units")))

    @task_group
    def album(unit: int):
        @task(max_active_tis_per_dagrun=VISION_CONCURRENCY)
        def vision(unit: int) -> int:
            return unit

        @task
        def summary(unit: int) -> int:
            return unit

        @task
        def enrich(unit: int) -> int:
            return unit

        @task(pool=INDEX_POOL)
        def index(unit: int) -> int:
            return unit

        return index(enrich(summary(vision(unit))))

    @task(pool=INDEX_POOL)
    def index_posts() -> None:
        return None

    @task(trigger_rule="none_failed")
    def report() -> None:
        return None

    channels = changed_channels()
    migrate() >> channels
    ingested = ingest.expand(unit=channels)
    [album.expand(unit=albums_ready(ingested)), ingested >> index_posts()] >> report()


telegram_albums_floor()
