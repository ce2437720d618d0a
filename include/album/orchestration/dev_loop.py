"""``airflow dags test`` says what the run did.

A pulling DAG's file wraps its DAG in ``dev_loop``: the DAG's ``test()`` (what ``airflow dags
test`` and ``dag.test()`` call) runs with Airflow's ``dag.test()`` fix in place
(``airflow_fixes.with_fixed_test``) and, once the run has ended, prints the ``report`` task's
summary line (``tasks.summary_line``): new posts, albums processed, or that no channel is
registered yet. Scheduled runs never call ``test()``; their report task logs the same line.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from include.album.orchestration.airflow_fixes import with_fixed_test

if TYPE_CHECKING:
    from airflow.sdk import DAG


def dev_loop(dag: DAG) -> DAG:
    """``dag`` whose ``test()`` runs with the fix and ends with the run's summary line."""
    fixed_test = with_fixed_test(dag).test

    @functools.wraps(fixed_test)
    def test(*args: Any, **kwargs: Any) -> Any:
        dag_run = fixed_test(*args, **kwargs)
        summary = _report_summary(dag_run)
        if summary:
            print(f"{dag.dag_id}: {summary}", flush=True)
        return dag_run

    dag.test = test
    return dag


def _report_summary(dag_run: Any) -> str | None:
    """The ``summary`` of the run's ``report`` task, if it ran."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    if dag_run is None:
        return None
    with create_session() as session:
        row = session.query(XComModel.value).filter(
            XComModel.dag_id == dag_run.dag_id, XComModel.run_id == dag_run.run_id, XComModel.task_id == "report",
            XComModel.map_index == -1, XComModel.key == "return_value").one_or_none()
    report = XComModel.deserialize_value(row) if row is not None else None
    return report.get("summary") if isinstance(report, dict) else None
