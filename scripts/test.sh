#!/usr/bin/env bash
# Set up if needed, then run the default (fast) test suite on 2 workers, one torch thread each.
# Slow learning checks: bash scripts/test.sh -m slow
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh >/dev/null
export QLEARN_THREADS=1 OMP_NUM_THREADS=1 MPLBACKEND=Agg
exec .venv/bin/python -m pytest -n 2 -q "$@"
