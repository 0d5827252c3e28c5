#!/usr/bin/env bash
# Create .venv (Python 3.11) with the CPU build of PyTorch and qlearn installed in editable mode, with the
# test tools (Ray Tune and Optuna among them) and the pixel games (MinAtar, ale-py with its ROMs, opencv).
# Idempotent: a second run only checks that everything is in place.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
# Installed and importable, and every pinned test tool (ruff, mypy: run by scripts/test.sh) at its pin.
CHECK='import torch, qlearn, threadpoolctl, tomllib, ale_py, minatar, cv2, ray.tune, optuna
from importlib.metadata import version
test = tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]["test"]
pins = [r.split(";")[0].strip().split("==") for r in test if "==" in r]
assert all(version(name.split("[")[0]) == want for name, want in pins), "a pinned test tool is missing or at another version"'
if ! .venv/bin/python -c "$CHECK" >/dev/null 2>&1; then
  .venv/bin/python -m pip install --quiet --upgrade pip
  # The CPU wheel of torch 2.13.0 (a plain `torch` would pull a multi-GB CUDA build).
  .venv/bin/python -m pip install --quiet "torch==2.13.0"
  .venv/bin/python -m pip install --quiet -e ".[test,pixels]"
fi
.venv/bin/python -c "import qlearn, torch; print(f'qlearn {qlearn.__version__} ready (torch {torch.__version__})')"
