"""The demo as a new user runs it: end to end, its follow-up commands exactly as printed, and no
process left behind, whether it succeeds or fails."""

import os
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from devtools.services import REPO

pytestmark = pytest.mark.e2e

VENV_BIN = str(Path(sys.executable).parent)


def processes_naming(path: Path) -> list[int]:
    """PIDs of the processes whose command line names ``path``: the demo's Postgres (its data
    directory) and FalkorDB (its --dir) do; moto's S3 server is a thread of the demo itself."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(path) in cmdline:
            pids.append(int(entry.name))
    return pids


def devtools(*args: str, env: dict | None = None, timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "devtools", *args], cwd=REPO, env={**os.environ, **(env or {})},
                          capture_output=True, text=True, timeout=timeout)


def test_the_demo_runs_and_its_follow_up_commands_work_as_printed(tmp_path):
    state = tmp_path / "demo"
    done = devtools("demo", "--state-dir", str(state))
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    assert "Stored posts and albums match the archive's expectation exactly." in done.stdout
    assert done.stdout.count("Redis is optional") == 1 and "unusable" not in done.stdout + done.stderr
    assert processes_naming(state) == []  # every service stopped

    printed = done.stdout.split("To look at this data again")[1].splitlines()  # [0]: the rest of that line
    up_command = printed[1].strip()
    assert up_command == f"python -m devtools up --state-dir {shlex.quote(str(state))}"
    follow_ups = [line.strip() for line in printed[3:] if line.strip()]
    assert follow_ups[0] == "python -m include.album channels list" and len(follow_ups) == 5

    shell_env = {**os.environ, "PATH": f"{VENV_BIN}:{os.environ['PATH']}"}
    up = subprocess.Popen(f"exec {up_command}", shell=True, cwd=REPO, env=shell_env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, start_new_session=True)
    exports = {}
    try:
        for line in up.stdout:
            if line.startswith("export "):
                name, _, value = line[len("export "):].rstrip("\n").partition("=")
                exports[name] = shlex.split(value)[0]
            if line.startswith("# Ctrl-C here stops"):
                break
        assert "ALBUMS_DB_DSN" in exports and "AIRFLOW_CONN_ALBUMS_QDRANT" in exports
        outputs = {}
        for command in follow_ups:
            ran = subprocess.run(command, shell=True, cwd=tmp_path, env={**shell_env, **exports},
                                 capture_output=True, text=True, timeout=600)
            assert ran.returncode == 0, (command, (ran.stdout + ran.stderr)[-3000:])
            outputs[command.split()[3] if command.startswith("python") else "dags test"] = ran.stdout
        assert "@album_lab" in outputs["channels"] and "no quarantined albums" in outputs["quarantine"]
        assert "album" in outputs["search"] and "no results" not in outputs["search"]
        assert len(outputs["browse"].splitlines()) >= 5
    finally:
        os.killpg(up.pid, signal.SIGINT)
        up.wait(timeout=60)
    assert up.returncode == 0
    assert processes_naming(state) == []

    albums_view_over_the_demo_data(state, shell_env)


def albums_view_over_the_demo_data(state: Path, shell_env: dict) -> None:
    """``python -m devtools ui``: one line says where and how to sign in; every thumbnail of the
    albums page loads (the media the demo stored came back with it)."""
    import re

    import httpx

    ui = subprocess.Popen(f"exec python -m devtools ui --state-dir {shlex.quote(str(state))}", shell=True, cwd=REPO,
                          env=shell_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          start_new_session=True)
    try:
        line = ui.stdout.readline()
        found = re.fullmatch(r"Albums view: (http://127\.0\.0\.1:\d+)/telegram-albums/ \(or Airflow's UI at \S+, "
                             r"menu Browse → Albums\); sign in as admin with password (\S+)\. Ctrl-C stops it\.\n",
                             line)
        assert found, line + ui.stdout.read() if ui.poll() is not None else line
        base, password = found.groups()
        token = httpx.post(f"{base}/auth/token", json={"username": "admin", "password": password}).json()
        client = httpx.Client(base_url=f"{base}/telegram-albums/", timeout=30,
                              headers={"Authorization": f"Bearer {token['access_token']}"})
        page = client.get("", params={"tenant": "acme"})
        thumbnails = re.findall(r'<img[^>]* src="(media/[^"]+)"', page.text)
        assert page.status_code == 200 and len(thumbnails) >= 8
        for src in thumbnails:
            image = client.get(src.replace("&amp;", "&"))
            assert (image.status_code, image.headers["content-type"]) == (200, "image/jpeg"), src
    finally:
        os.killpg(ui.pid, signal.SIGINT)
        ui.wait(timeout=60)
    assert ui.returncode == 0
    assert processes_naming(state) == []


def test_a_demo_that_fails_stops_every_service_it_started(tmp_path):
    state = tmp_path / "demo"
    done = devtools("demo", "--state-dir", str(state), env={"TELEGRAM_ALBUMS_DEADLINE_SECONDS": "soon"})
    assert done.returncode == 2
    assert "starting embedded Postgres" in done.stdout  # it got as far as the services
    assert done.stderr.strip() == ("error: TELEGRAM_ALBUMS_DEADLINE_SECONDS='soon' is not a positive whole number: "
                                   "set it to one (default 900), or unset it")
    assert processes_naming(state) == []


def test_a_demo_on_an_archive_that_does_not_exist_fails_before_starting_anything(tmp_path):
    done = devtools("demo", "--state-dir", str(tmp_path / "demo"), "--archive", str(tmp_path / "nowhere"))
    assert done.returncode == 2 and "starting" not in done.stdout
    assert done.stderr.strip() == (f"error: {tmp_path / 'nowhere'} is not a telegram-archive/1 archive: "
                                   "manifest.json is missing (give the directory `python -m include.album record` "
                                   "wrote)")
