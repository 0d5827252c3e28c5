#!/usr/bin/env bash
# Set everything up, then the demo: DQN on FrozenLake 4x4 slippery. It trains, prints the learned
# Q-table beside the exact optimum, evaluates with confidence intervals, and saves plots.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
Q=.venv/bin/qlearn
echo "== training DQN on FrozenLake-v1 (4x4, slippery) =="
RUN=$($Q train FrozenLake-v1 --agent dqn --seed 0 --json | .venv/bin/python -c "import json,sys; print(json.load(sys.stdin)['run_dir'])")
echo "== learned Q-table beside the optimum (value iteration) =="
$Q qtable "$RUN" --compare optimal
echo "== evaluation =="
$Q evaluate "$RUN" --episodes 1000
echo "== plots =="
$Q plot "$RUN"
$Q render "$RUN" --episodes 3
$Q report "$RUN"
echo "run folder: $RUN"
