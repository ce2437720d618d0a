#!/usr/bin/env bash
# Create or update .venv with everything the demo and the tests need. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if ! command -v uv >/dev/null 2>&1; then
  "$PYTHON" -m pip install --quiet --user uv
  export PATH="$HOME/.local/bin:$PATH"
fi
[ -x .venv/bin/python ] || uv venv --quiet --python "$PYTHON" .venv
# Bytecode is compiled at install: otherwise every `airflow` start costs ~2 s more.
uv pip install --quiet --compile-bytecode --python .venv/bin/python -r requirements-dev.txt -e .
