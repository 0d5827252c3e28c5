"""Distributional heads measured against the truth and against the peer, in one script run.

Parts (each appends rows to ``bench/results/distributional.jsonl``):

1. ``frozenlake``: slippery FrozenLake 4x4 with the preset and ``distributional=c51`` (and ``qr``), 5 seeds
   in lockstep: each seed's exact success probability (from ``P``) and the Wasserstein-1 distance of its
   start state's learned return distribution (the greedy action's) from the exact distribution of its
   own greedy policy (``qlearn.exact_returns``), with the floor (the exact distribution's distance from
   its best representation by the agent). The issue's goal: 5/5 at least 0.70, distance at most 0.05.

Usage: ``python bench/distributional.py [--parts frozenlake] [--kinds c51,qr]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from record import append  # noqa: E402

import qlearn  # noqa: E402
from qlearn.envs.make import make_env  # noqa: E402
from qlearn.envs.tabular import TabularMDP, success_probability  # noqa: E402
from qlearn.exact_returns import compare_agent  # noqa: E402
from qlearn.threads import configure_threads  # noqa: E402


def part_frozenlake(args) -> list[dict]:
    rows = []
    env = make_env("FrozenLake-v1")
    mdp = TabularMDP.from_env(env)
    for kind in args.kinds.split(","):
        spec = qlearn.RunSpec.build("FrozenLake-v1", "dqn", seeds=range(args.seeds), lockstep=True,
                                    sets=[f"distributional={kind}"])
        t = time.perf_counter()
        res = qlearn.run(spec, out=args.out, progress=False, command=" ".join(sys.argv))
        wall = time.perf_counter() - t
        seeds = []
        for i in range(args.seeds):
            agent = res.agent.select(i)
            q = agent.q_table(0)
            _, _, w1, floor, _ = compare_agent(agent, env)
            start = int(mdp.isd.argmax())
            seeds.append({"seed": i, "exact_success": success_probability(mdp, q), "w1_start": float(w1[start]),
                          "floor_start": float(floor[start]), "w1_max_nonterminal": float(w1[~mdp.terminal].max())})
        row = {"part": "frozenlake", "env": "FrozenLake-v1", "kind": kind, "seeds": seeds, "steps": res.steps,
               "wall_s": wall, "settings": spec.agent_config.__dict__ | {"hidden": list(spec.agent_config.hidden)},
               "solved": sum(s["exact_success"] >= 0.70 for s in seeds),
               "within_0.05": sum(s["w1_start"] <= 0.05 for s in seeds)}
        print(json.dumps(row), flush=True)
        rows.append(row)
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--parts", default="frozenlake")
    p.add_argument("--kinds", default="c51,qr")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--out", default="runs/bench_distributional")
    args = p.parse_args()
    configure_threads(1)
    parts = {"frozenlake": part_frozenlake}
    for name in args.parts.split(","):
        append("distributional", parts[name](args))


if __name__ == "__main__":
    main()
