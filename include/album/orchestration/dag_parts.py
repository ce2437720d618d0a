"""What both pulling DAGs share: the Assets, and every task after the pull.

``telegram_albums`` (live, every 5 minutes) and ``telegram_albums_history`` (a channel's past,
a day a run) differ only in how they pull; what they stored goes through the same tasks::

    pulled ─┬─► albums_ready ─► album[unit] ─┬─► report
            └─► index_posts ─────────────────┘
    album[unit] = vision ─► summary ─► enrich ─► index
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.sdk import Asset, get_current_context, task, task_group

from include.album.domain.lifecycle import AlbumStep
from include.album.orchestration import album_tasks, tasks
from include.album.orchestration.deployment import INDEX_POOL, INDEX_QUEUE, VISION_CONCURRENCY, VISION_QUEUE

ALBUMS_PARSED = Asset("albums.parsed")
ALBUM_ASSEMBLED = Asset("album.assembled")


def process_albums(pulled: Any) -> None:
    """The album task group over the albums ``pulled`` (a mapped pull task's output) made new or
    changed, and those still waiting; the posts outside albums indexed; the run's report."""

    @task(trigger_rule="none_failed")  # also when nothing was pulled: albums still waiting are due
    def albums_ready(per_unit: list[list[int]]) -> list[list[int]]:
        return tasks.albums_ready(per_unit)

    @task_group
    def album(album_ids: list[int]):
        @task(queue=VISION_QUEUE, map_index_template="{{ album_label }}",
              max_active_tis_per_dagrun=VISION_CONCURRENCY, execution_timeout=timedelta(minutes=30))
        def vision(album_ids: list[int]) -> list[int]:
            return album_tasks.album_step(album_ids, get_current_context(), AlbumStep.VISION)

        @task(map_index_template="{{ album_label }}", execution_timeout=timedelta(minutes=10))
        def summary(album_ids: list[int]) -> list[int]:
            return album_tasks.album_step(album_ids, get_current_context(), AlbumStep.SUMMARY)

        @task(map_index_template="{{ album_label }}", outlets=[ALBUM_ASSEMBLED],
              execution_timeout=timedelta(minutes=10))
        def enrich(album_ids: list[int]) -> list[int]:
            return album_tasks.album_step(album_ids, get_current_context(), AlbumStep.ENRICH,
                                          outlet=ALBUM_ASSEMBLED)

        @task(map_index_template="{{ album_label }}", pool=INDEX_POOL, queue=INDEX_QUEUE,
              execution_timeout=timedelta(minutes=15))
        def index(album_ids: list[int]) -> list[int]:
            return album_tasks.album_step(album_ids, get_current_context(), AlbumStep.INDEX)

        return index(enrich(summary(vision(album_ids))))

    @task(pool=INDEX_POOL, queue=INDEX_QUEUE, trigger_rule="none_failed", execution_timeout=timedelta(minutes=30))
    def index_posts() -> dict[str, int]:
        return tasks.index_posts()

    @task(trigger_rule="none_failed", multiple_outputs=False)
    def report() -> dict[str, int]:
        return tasks.report(get_current_context()["dag_run"].start_date)

    [album.expand(album_ids=albums_ready(pulled)), pulled >> index_posts()] >> report()
