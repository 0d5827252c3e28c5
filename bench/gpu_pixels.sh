#!/usr/bin/env bash
# Issue 13's GPU check, at most ~6 minutes on a lent GPU: env steps/s windows of qlearn (alone and
# --seeds 8 on MinAtar Breakout; Pong) and SB3 DQN at matched settings on the GPU, then a time-capped
# Pong run of the Atari preset (its best whole-game score and when). Rows go to $OUT/pixels.jsonl
# (bench/record.py): cat FILES_AT/pixels.jsonl >> bench/results/pixels.jsonl here.
# The lent machine needs the pixel packages and SB3: carry their wheels in an ignored .whl/ folder, e.g.
#   pip download --only-binary=:all: --python-version 3.12 -d .whl ale-py==0.12.1 minatar==1.0.15 \
#     opencv-python-headless stable-baselines3==2.9.2 gymnasium==1.4.0
# Pass QLEARN_COMMIT=$(git rev-parse HEAD): the copied tree has no git.
set -u
OUT=${OUT:-gpu-out}
mkdir -p "$OUT"
export QLEARN_BENCH_RESULTS="$OUT" PYTHONUNBUFFERED=1 QLEARN_THREADS=1 MPLBACKEND=Agg
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
PY=${PYTHON:-python3}
if [ -d .whl ]; then
  $PY -m pip install -q --no-index --find-links .whl --target /tmp/site ale-py minatar opencv-python-headless \
    stable-baselines3 gymnasium && export PYTHONPATH="$PYTHONPATH:/tmp/site"
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1 | tee "$OUT/nvidia-smi.txt"
timeout 150 $PY bench/pixels.py --device cuda --parts minatar --warmup 2000 --window 8000 2>&1 | tee "$OUT/minatar.txt"
timeout 120 $PY bench/pixels.py --device cuda --parts pong --warmup 2000 --pong-window 10000 2>&1 | tee "$OUT/pong.txt"
timeout 150 $PY bench/pixels.py --device cuda --parts pong_capped --cap-s 110 2>&1 | tee "$OUT/pong_capped.txt"
