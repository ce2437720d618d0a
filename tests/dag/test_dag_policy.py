"""Project policy, checked on every DAG: imports cleanly, documented, owned, tagged, retried."""

import pytest

pytestmark = pytest.mark.dag


def test_dags_import_without_errors(dagbag):
    assert dagbag.import_errors == {}
    assert "telegram_albums" in dagbag.dag_ids


def test_every_dag_is_documented_owned_tagged_and_retried(dagbag):
    for dag_id, dag in dagbag.dags.items():
        assert dag.doc_md and len(dag.doc_md) > 200, f"{dag_id} needs doc_md"
        assert dag.tags, f"{dag_id} needs tags"
        for task in dag.tasks:
            assert task.owner not in ("", "airflow"), f"{dag_id}.{task.task_id} needs a real owner"
            assert task.retries >= 1, f"{dag_id}.{task.task_id} needs retries"


def test_telegram_albums_runs_on_the_listeners_events_and_every_5_minutes(dagbag):
    from datetime import timedelta

    from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable

    from include.album.orchestration.updates_trigger import TelegramUpdatesTrigger

    dag = dagbag.get_dag("telegram_albums")
    assert isinstance(dag.timetable, AssetOrTimeSchedule)
    cron = dag.timetable.timetable
    assert isinstance(cron, CronTriggerTimetable)
    assert cron.interval == timedelta(minutes=5)
    assert cron.expression == "*/5 * * * *"
    [asset] = dag.timetable.asset_condition.objects
    assert asset.name == "telegram.updates"
    assert [type(w.trigger) for w in asset.watchers] == [TelegramUpdatesTrigger]
    assert dag.max_active_runs == 1
    ingest = dag.get_task("ingest")
    assert ingest.pool == "telegram"
    assert ingest.retry_exponential_backoff


def test_tasks_are_routed_to_queues_by_the_resource_they_use(dagbag):
    """Celery queues (ignored by the LocalExecutor): the Telegram session, vision, index writers;
    everything else on Airflow's default queue."""
    from airflow.configuration import conf

    default = conf.get("operators", "default_queue")
    expected = {
        "telegram_albums": {"changed_channels": "telegram", "ingest": "telegram", "album.vision": "vision",
                            "album.index": "index", "index_posts": "index"},
        "telegram_albums_refresh": {"refresh": "telegram", "republish": "index", "reconcile": "index"},
        "telegram_albums_history": {"history": "telegram", "album.vision": "vision", "album.index": "index",
                                    "index_posts": "index"},
    }
    for dag_id, queues in expected.items():
        dag = dagbag.get_dag(dag_id)
        for task in dag.tasks:
            assert task.queue == queues.get(task.task_id, default), f"{dag_id}.{task.task_id} on {task.queue}"
        for task_id in queues:  # the telegram tasks also hold the 1-slot session pool
            if queues[task_id] == "telegram":
                assert dag.get_task(task_id).pool == "telegram"


def test_the_history_dag_runs_a_day_at_a_time_after_the_live_dag_on_the_session(dagbag):
    from datetime import timedelta

    live, history = dagbag.get_dag("telegram_albums"), dagbag.get_dag("telegram_albums_history")
    assert history.timetable.interval == timedelta(days=1) and history.timetable.expression == "0 0 * * *"
    assert history.get_task("history").pool == live.get_task("ingest").pool == "telegram"
    assert history.get_task("history").priority_weight < live.get_task("ingest").priority_weight
    assert live.get_task("changed_channels").priority_weight == live.get_task("ingest").priority_weight
    shared = {t.task_id for t in live.tasks} & {t.task_id for t in history.tasks}
    assert {"album.vision", "album.summary", "album.enrich", "album.index", "index_posts", "report"} <= shared
