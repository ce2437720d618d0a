"""The product installs alone: `pip install .` from requirements.txt, without the development tools.

A fresh venv gets requirements.txt and the package (not editable, from a copy of the tracked
files, so nothing of the checkout leaks in); the DAGs import, the CLI answers and offers no
development command, and neither the dev tools nor their assets are installed.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.e2e


def uv() -> str:
    found = shutil.which("uv") or str(Path.home() / ".local" / "bin" / "uv")
    assert Path(found).exists(), "uv is missing: scripts/bootstrap.sh installs it"
    return found


@pytest.fixture(scope="module")
def product_venv(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("install")
    source = work / "source"
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
    for name in filter(None, tracked.decode().split("\0")):
        if (REPO / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, source / name)
    venv = work / "venv"
    subprocess.run([uv(), "venv", "--quiet", "--python", sys.executable, str(venv)], check=True)
    subprocess.run([uv(), "pip", "install", "--quiet", "--python", str(venv / "bin" / "python"),
                    "-r", str(source / "requirements.txt"), str(source)], check=True, timeout=900)
    return venv


def run(venv: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "PYTHON"))}
    env["AIRFLOW_HOME"] = str(cwd / "airflow_home")
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_the_installed_cli_offers_only_product_commands(product_venv, tmp_path):
    shown = run(product_venv, str(product_venv / "bin" / "telegram-albums"), "--help", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    for command in ("migrate", "channels", "record", "login", "search", "quarantine"):
        assert command in shown.stdout
    for command in ("demo", "benchmark", "sample"):
        assert command not in shown.stdout
    moved = run(product_venv, str(product_venv / "bin" / "telegram-albums"), "demo", cwd=tmp_path)
    assert moved.returncode == 2 and "python -m devtools demo" in moved.stderr and "Traceback" not in moved.stderr


def test_the_dags_import_from_the_installed_package(product_venv, tmp_path):
    dags = tmp_path / "dags"
    shutil.copytree(REPO / "dags", dags)
    script = ("from airflow.dag_processing.dagbag import DagBag\n"
              "bag = DagBag(dag_folder='dags')\n"
              "print(sorted(bag.dag_ids), bag.import_errors)\n")
    imported = run(product_venv, str(product_venv / "bin" / "python"), "-c", script, cwd=tmp_path)
    assert imported.returncode == 0, imported.stderr
    assert "['telegram_albums', 'telegram_albums_history', 'telegram_albums_refresh'] {}" in imported.stdout, \
        imported.stdout + imported.stderr


def test_the_development_tools_are_not_installed(product_venv, tmp_path):
    found = run(product_venv, str(product_venv / "bin" / "python"), "-c", "import devtools", cwd=tmp_path)
    assert found.returncode != 0 and "No module named 'devtools'" in found.stderr
    site = next((product_venv / "lib").glob("python3*/site-packages"))
    installed = {p.relative_to(site).as_posix() for p in (site / "include").rglob("*") if p.is_file()}
    assert "include/album/orchestration/tasks.py" in installed
    assert "include/sql/queries/album_get.sql" in installed and "include/cypher/" in " ".join(installed)
    assert not [p for p in installed if p.endswith((".ttf", ".LICENSE")) or "devtools" in p]


def test_the_development_tools_run_from_the_checkout():
    shown = subprocess.run([sys.executable, "-m", "devtools", "--help"], cwd=REPO, capture_output=True, text=True)
    assert shown.returncode == 0, shown.stderr
    assert all(command in shown.stdout for command in ("demo", "sample", "benchmark", "embeddings"))
