#!/usr/bin/env bash
# Issue 4's GPU checks in one short run on a lent GPU machine: the CUDA tests, then bench/gpu.py
# (1, 32, 256 and 1,024 seeds of the FrozenLake batched recipe in one process each), then 1,024 seeds
# again with mid-run checkpoints on.
# Where gymnasium is missing there, carry its wheels in an ignored .whl/ folder, which this script installs:
#   pip download --no-deps --only-binary=:all: --python-version 3.12 -d .whl gymnasium==1.4.0 farama-notifications==0.0.6
# Output goes to $OUT (default gpu-out/): test log, benchmark logs, nvidia-smi, and the rows in $OUT/gpu.jsonl
# (bench/record.py), to append to bench/results/gpu.jsonl here: cat FILES_AT/gpu.jsonl >> bench/results/gpu.jsonl.
# A copy of the tree without git stamps rows with QLEARN_COMMIT (pass it: QLEARN_COMMIT=$(git rev-parse HEAD)).
set -u
OUT=${OUT:-gpu-out}
mkdir -p "$OUT"
export QLEARN_BENCH_RESULTS="$OUT"
export PYTHONUNBUFFERED=1 QLEARN_THREADS=1 MPLBACKEND=Agg PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
PY=${PYTHON:-python3}
if [ -d .whl ]; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH="$PYTHONPATH:/tmp/site"
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1 | tee "$OUT/nvidia-smi.txt"
$PY -c "import torch, gymnasium, numpy; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'gymnasium', gymnasium.__version__, 'numpy', numpy.__version__)" 2>&1 | tee "$OUT/versions.txt"
if [ -z "${SKIP_TESTS:-}" ]; then
  timeout 200 $PY -m pytest -q -p no:cacheprovider tests/test_cuda.py 2>&1 | tee "$OUT/test_cuda.txt"
fi
timeout "${BENCH_TIMEOUT:-300}" $PY bench/gpu.py --device cuda --ks ${KS:-1 32 256 1024} ${PROFILE_K:+--profile-k $PROFILE_K} \
  2>&1 | tee "$OUT/gpu.txt"
# the same 1,024 seeds with qlearn's default mid-run checkpoints (every 10,000 steps: all replay memories)
timeout "${BENCH_TIMEOUT:-300}" $PY bench/gpu.py --device cuda --ks ${CKPT_KS:-1024} --set checkpoint_every=10000 \
  2>&1 | tee "$OUT/gpu_checkpoints.txt"
