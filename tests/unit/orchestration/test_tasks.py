"""Which runs pull by date: only those made by `airflow backfill create`."""

from datetime import UTC, datetime
from types import SimpleNamespace

from airflow.utils.types import DagRunType

from include.album.orchestration.tasks import pull_window

START, END = datetime(2026, 1, 5, 10, 0, tzinfo=UTC), datetime(2026, 1, 5, 10, 5, tzinfo=UTC)


def context(run_type) -> dict:
    return {"dag_run": SimpleNamespace(run_type=run_type), "data_interval_start": START, "data_interval_end": END}


def test_backfill_runs_pull_their_data_interval():
    window = pull_window(context(DagRunType.BACKFILL_JOB))
    assert (window.start, window.end) == (START, END)


def test_scheduled_and_manual_runs_pull_above_the_mark():
    assert pull_window(context(DagRunType.SCHEDULED)) is None
    assert pull_window(context(DagRunType.MANUAL)) is None
    assert pull_window({"dag_run": SimpleNamespace(run_type=DagRunType.MANUAL)}) is None
