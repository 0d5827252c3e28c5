"""Time of one DQN gradient step: the numpy step (engine=numpy) against autograd (engine=torch).

FrozenLake-sized network (16 -> 64 -> 64 -> 4, Double DQN), replay memory filled with 3,000 transitions,
300 timed steps after 20 warm-up steps, one torch and one BLAS thread. K agents, batch B each.

Run:  .venv/bin/python bench/step_time.py [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from qlearn import DQNAgent, DQNConfig, make_env
from qlearn.runs import versions
from qlearn.training import configure_threads


def step_ms(k: int, batch: int, engine: str, steps: int = 300) -> float:
    agent = DQNAgent.for_env(make_env("FrozenLake-v1"), DQNConfig(batch_size=batch, double=True, engine=engine),
                             seeds=range(k))
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
    ap.add_argument("--json")
    args = ap.parse_args()
    configure_threads(1)
    rows = []
    print(f"versions: {json.dumps(versions())}")
    print("| K agents | batch | numpy step ms | autograd ms | autograd : numpy |\n|---|---|---|---|---|")
    for k, b in ((1, 64), (1, 256), (32, 256)):
        n, t = step_ms(k, b, "numpy"), step_ms(k, b, "torch")
        rows.append({"k": k, "batch": b, "numpy_ms": n, "torch_ms": t})
        print(f"| {k} | {b} | {n:.3f} | {t:.3f} | {t / n:.1f}x |", flush=True)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"versions": versions(), "rows": rows}, fh, indent=1)


if __name__ == "__main__":
    main()
