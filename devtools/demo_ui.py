"""``python -m devtools ui``: the albums view over the demo's data, inside Airflow's UI.

The demo's services over its data (as ``up`` starts them, with the media the demo stored back
in S3), and an ``airflow api-server`` with this checkout's ``plugins/`` loaded and one user,
``admin``, whose password is new every time. It prints one line: where to open the view and
how to sign in. A plugin that did not load is an error, not Airflow's own page answering 200
at ``/telegram-albums/``. Ctrl-C stops everything.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import threading
import time
from pathlib import Path

import httpx

from devtools.airflow_stack import AIRFLOW
from devtools.demo import DemoError, demo_state, services
from devtools.services import REPO, free_port

URL_PREFIX = "/telegram-albums"


def ui_env(home: Path, password: str, port: int) -> dict[str, str]:
    """Airflow's settings for the api-server: the plugins, one admin, this port."""
    passwords = home / "ui-passwords.json"
    passwords.write_text(json.dumps({"admin": password}), encoding="utf-8")
    passwords.chmod(0o600)
    return {
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
    }


def check_plugin(base: str) -> None:
    """The view answers for itself: without a sign-in its API says 401; Airflow's own catch-all
    page (the plugin not loaded) would say 200."""
    response = httpx.get(f"{base}{URL_PREFIX}/api/albums", timeout=30)
    if response.status_code != 401:
        raise DemoError(f"the albums view did not load into the api-server ({URL_PREFIX}/api/albums answered "
                        f"{response.status_code}, not 401): `airflow plugins` with AIRFLOW__CORE__PLUGINS_FOLDER="
                        f"{REPO / 'plugins'} says why")


def ui(state_dir: Path | None = None, port: int | None = None) -> int:
    state = demo_state(state_dir, "ui")
    port = port or free_port()
    base, password = f"http://127.0.0.1:{port}", secrets.token_urlsafe(12)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    with services(state, state / "archive", fresh_database=False) as running:
        home = Path(running.env["AIRFLOW_HOME"])
        env = {**os.environ, **running.env, **ui_env(home, password, port)}
        log_path = home / "api-server.log"
        with open(log_path, "ab") as log:
            server = subprocess.Popen([AIRFLOW, "api-server", "--port", str(port)], env=env, stdout=log,
                                      stderr=log, start_new_session=True)
        try:
            _wait_until_up(server, base, log_path)
            check_plugin(base)
            print(f"Albums view: {base}{URL_PREFIX}/ (or Airflow's UI at {base}/, menu Browse → Albums); "
                  f"sign in as admin with password {password}. Ctrl-C stops it.", flush=True)
            while not stop.wait(1):
                if server.poll() is not None:
                    raise DemoError(f"the api-server stopped (exit {server.returncode}): see {log_path}")
        finally:
            _stop(server)
    print("services stopped")
    return 0


def _wait_until_up(server: subprocess.Popen, base: str, log_path: Path, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            tail = log_path.read_text(errors="replace").strip().splitlines()[-1:] or ["(no output)"]
            raise DemoError(f"the api-server did not start (exit {server.returncode}: {tail[0]}): see {log_path}")
        try:
            if httpx.get(f"{base}/api/v2/monitor/health", timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(1)
    raise DemoError(f"the api-server did not answer within {timeout:.0f} s: see {log_path}")


def _stop(server: subprocess.Popen) -> None:
    try:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()
