#!/usr/bin/env bash
# Set up if needed, lint (ruff), check formatting (ruff format), type-check (mypy, config in pyproject.toml),
# then run the default (fast) test suite on 2 workers, one torch thread each.
# Slow learning checks: bash scripts/test.sh -m slow
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh >/dev/null
.venv/bin/ruff check --quiet src
.venv/bin/ruff format --check --quiet src
.venv/bin/mypy
export QLEARN_THREADS=1 OMP_NUM_THREADS=1 MPLBACKEND=Agg
exec .venv/bin/python -m pytest -n 2 -q "$@"
