#!/usr/bin/env bash
# The pipeline end to end on the bundled sample archive, with embedded services only.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec .venv/bin/python -m devtools demo "$@"
