"""Deadline Alert callback of telegram_albums (runs in the triggerer, so it lives in plugins/).

Airflow calls it when a run is not finished ``TELEGRAM_ALBUMS_DEADLINE_SECONDS`` after it was
queued. Airflow also fires for runs that already ended (failed before the deadline), so the
run's state is checked first: only a run still queued or running is late.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)

WEBHOOK_CONN_ID = "albums_alert_webhook"
FINISHED = ("success", "failed")


def _webhook_url(conn_id: str) -> str | None:
    try:
        from airflow.sdk import BaseHook

        connection = BaseHook.get_connection(conn_id)
    except Exception:  # noqa: BLE001 - the webhook is optional
        return None
    from include.album.orchestration.connections import connection_url

    return connection_url(connection, "url")


async def on_deadline_missed(context: dict[str, Any] | None = None, webhook_conn_id: str = WEBHOOK_CONN_ID,
                             **_: Any) -> str:
    """Report a late run; returns a one-line outcome (Airflow stores it as the callback's text output)."""
    dag_run = (context or {}).get("dag_run") or {}  # the REST API's DAGRunResponse, as JSON
    state = dag_run.get("state")
    run_id = dag_run.get("dag_run_id") or dag_run.get("run_id")
    run = f"{dag_run.get('dag_id')} {run_id}"
    if state in FINISHED:
        log.info("deadline passed for %s, but it already %s: nothing to report", run, state)
        return f"not alerted: {run} already {state}"

    deadline = ((context or {}).get("deadline") or {}).get("deadline_time")
    log.warning("DEADLINE MISSED: %s (queued at %s, state %s) is not finished by %s", run,
                dag_run.get("queued_at"), state, deadline)
    from airflow.sdk.observability import stats

    from include.album.steps import metrics

    metrics.send_to(stats)
    metrics.incr("telegram_albums_deadline_missed_total")
    url = _webhook_url(webhook_conn_id)
    if url:
        import httpx

        payload = {"alert": "telegram_albums deadline missed", "dag_id": dag_run.get("dag_id"),
                   "run_id": run_id, "state": state, "queued_at": dag_run.get("queued_at"),
                   "deadline": str(deadline)}
        try:
            async with httpx.AsyncClient(timeout=10) as client:
                response = await client.post(url, json=payload)
                response.raise_for_status()
        except httpx.HTTPError as exc:
            log.error("deadline webhook %s failed: %s", webhook_conn_id, exc)
            return f"alerted: {run} {state}; webhook failed: {exc}"
    return f"alerted: {run} {state}; webhook {'sent' if url else 'not configured'}"
