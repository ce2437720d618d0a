"""The Deadline Alert callback: alerts (log, metric, webhook) only for runs still unfinished."""

import asyncio
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "plugins"))  # as Airflow does for plugins/

from telegram_albums_alerts import on_deadline_missed  # noqa: E402

from tests.helpers import RecordingWebhook  # noqa: E402


@pytest.fixture
def webhook(monkeypatch):
    hook = RecordingWebhook()
    connection = {"conn_type": "http", "extra": {"url": hook.url}}
    monkeypatch.setenv("AIRFLOW_CONN_ALBUMS_ALERT_WEBHOOK", json.dumps(connection))
    yield hook.received
    hook.close()


def context(state: str) -> dict:
    return {"dag_run": {"dag_id": "telegram_albums", "dag_run_id": "scheduled__2026-01-05T10:05:00+00:00",
                        "state": state, "queued_at": "2026-01-05T10:05:01+00:00"},
            "deadline": {"id": "d1", "deadline_time": "2026-01-05T10:20:01+00:00"}}


def test_a_running_run_past_its_deadline_is_reported(webhook, caplog):
    # The result is stored in a text column by the triggerer: it must be a str (a dict kills it).
    result = asyncio.run(on_deadline_missed(context=context("running")))
    assert result.startswith("alerted:") and result.endswith("webhook sent")
    assert webhook[0]["run_id"] == "scheduled__2026-01-05T10:05:00+00:00" and webhook[0]["state"] == "running"
    assert "DEADLINE MISSED" in caplog.text


@pytest.mark.parametrize("state", ["success", "failed"])
def test_finished_runs_are_not_reported(webhook, state):
    assert asyncio.run(on_deadline_missed(context=context(state))).startswith("not alerted")
    assert webhook == []


def test_without_a_webhook_connection_it_still_logs_and_counts(monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_ALBUMS_ALERT_WEBHOOK", raising=False)
    assert asyncio.run(on_deadline_missed(context=context("queued"))).endswith("webhook not configured")
