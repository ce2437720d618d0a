"""Work-arounds for Airflow bugs this project hits, each as narrow as the bug, removed with it.

``dag.test()`` with a Deadline Alert (Airflow 3.3)
--------------------------------------------------
``DAG.test()`` (and so ``airflow dags test``) runs the DAG from an in-memory round trip of its
serialization (``deserialize_dag(serialize_dag(self))``). In that copy ``deadline`` still holds
the encoded alerts (dicts), while a DAG loaded from the metadata DB, as the scheduler's is,
holds the ids of the stored ``deadline_alert`` rows. When the run succeeds,
``DagRun.update_state`` looks each entry up with ``DeadlineAlert.get_by_id`` to prune the
run's deadlines, and binding a dict as a UUID fails: ``StatementError: 'dict' object has no
attribute 'hex'``; the command exits 1 after every task succeeded.

The fix sits where the copy meets the DB: ``airflow.models.dagrun.get_or_create_dagrun``, which
only ``DAG.test()`` calls. After it has created the run (and, from the stored alerts, the run's
``deadline`` rows, as for a scheduled run), the copy's ``deadline`` becomes the stored alerts'
ids, the form the rest of Airflow expects. The wrapper is in place only while the DAG's own
``test()`` runs (``with_fixed_test``, through ``dev_loop``): the DAG file gives its DAG object a
``test`` that installs it, calls ``DAG.test`` and removes it, so the scheduler, the DAG processor and the workers,
which never call ``test()``, run Airflow unpatched. ``airflow dags test`` calls ``test()`` on the
DAG object the file made, and so do tests through a ``DagBag``. When Airflow fixes the copy,
``deadline`` holds no dict and the wrapper changes nothing; ``tests/dag/test_dags_test.py``
says when the bug is gone and when this fix stops working.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow.sdk import DAG


def _stored_alert_ids(dag_run: Any, session: Any) -> list[str]:
    from airflow.models.deadline_alert import DeadlineAlert
    from airflow.models.serialized_dag import SerializedDagModel
    from sqlalchemy import select

    serialized_dag_id = session.scalar(select(SerializedDagModel.id).where(
        SerializedDagModel.dag_version_id == dag_run.created_dag_version_id))
    return [str(alert_id) for alert_id in session.scalars(
        select(DeadlineAlert.id).where(DeadlineAlert.serialized_dag_id == serialized_dag_id))]


def encoded_deadline(dag: Any) -> bool:
    """The bug's condition: a DAG whose ``deadline`` holds encoded alerts instead of stored ids."""
    return any(isinstance(alert, dict) for alert in getattr(dag, "deadline", None) or ())


@contextmanager
def fixed_get_or_create_dagrun() -> Iterator[None]:
    """``airflow.models.dagrun.get_or_create_dagrun`` wrapped (see the module) for the block's duration."""
    from airflow.models import dagrun

    original = dagrun.get_or_create_dagrun

    @functools.wraps(original)
    def get_or_create_dagrun(*, dag: Any, session: Any, **kwargs: Any) -> Any:
        dag_run = original(dag=dag, session=session, **kwargs)
        if encoded_deadline(dag):
            dag.deadline = _stored_alert_ids(dag_run, session)
        return dag_run

    dagrun.get_or_create_dagrun = get_or_create_dagrun
    try:
        yield
    finally:
        dagrun.get_or_create_dagrun = original


def with_fixed_test(dag: DAG) -> DAG:
    """``dag`` whose ``test()`` (``airflow dags test``, ``dag.test()``) runs with the fix in place."""
    plain_test = type(dag).test

    @functools.wraps(plain_test)
    def test(*args: Any, **kwargs: Any) -> Any:
        with fixed_get_or_create_dagrun():
            return plain_test(dag, *args, **kwargs)

    dag.test = test
    return dag
