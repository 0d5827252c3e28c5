"""Time of one DQN gradient step: the numpy step (engine=numpy) against autograd (engine=torch).

FrozenLake-sized networks (16 -> 64 -> 64 -> 4, Double DQN; and the `fast` recipe's linear 16 -> 4), replay
memory filled with 3,000 transitions, 300 timed steps after 20 warm-up steps, one torch and one BLAS thread.
K agents, batch B each. FrozenLake's 16 states are fewer than B, so the numpy step runs the networks once
per state (its per-state path); autograd runs them on the one-hot minibatch.

Run:  .venv/bin/python bench/step_time.py [--json FILE | --no-record]    (rows: bench/results/step_time.jsonl)
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import record  # bench/ is on the path when run as a script

from qlearn import DQNAgent, DQNConfig, make_env
from qlearn.threads import configure_threads


def step_ms(k: int, batch: int, engine: str, steps: int = 300, hidden: tuple = (64, 64)) -> float:
    cfg = DQNConfig(batch_size=batch, double=True, engine=engine, hidden=hidden)
    agent = DQNAgent.for_env(make_env("FrozenLake-v1"), cfg, seeds=range(k))
    rng = np.random.default_rng(0)
    for _ in range(3_000):
        s = rng.integers(0, 16, (k, 1))
        agent.buffer.store(agent._stored(s), s % 4, np.zeros((k, 1)), agent._stored(s), np.zeros((k, 1)),
                           np.zeros((k, 1)))
    for _ in range(20):
        agent.train_step()
    t = time.perf_counter()
    for _ in range(steps):
        agent.train_step()
    return (time.perf_counter() - t) / steps * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    record.add_arguments(ap)
    args = ap.parse_args()
    configure_threads(1)
    rows = []
    print(f"stamp: {json.dumps(record.stamp())}", flush=True)
    print("| network | K agents | batch | numpy step ms | autograd ms | autograd : numpy |\n|---|---|---|---|---|---|")
    for hidden, k, b in (((64, 64), 1, 64), ((64, 64), 1, 256), ((64, 64), 32, 256), ((), 1, 1024)):
        n, t = step_ms(k, b, "numpy", hidden=hidden), step_ms(k, b, "torch", hidden=hidden)
        rows.append({"hidden": list(hidden), "k": k, "batch": b, "numpy_ms": n, "torch_ms": t})
        net = "x".join(map(str, hidden)) or "linear"
        print(f"| {net} | {k} | {b} | {n:.3f} | {t:.3f} | {t / n:.1f}x |", flush=True)
    record.recorder("step_time", args)(rows)


if __name__ == "__main__":
    main()
