"""Default `qlearn train` on every toy-text env with a model and on random FrozenLake maps, against the optimum.

For each env and agent: ``qlearn train ENV --agent A --seeds 5`` with the defaults (the preset where one
exists, else the settings qlearn derives from the env's spaces: ``qlearn/derived.py``), seeds 0-4 in
lockstep, then the exact expected return (within the time limit, from the env's ``P``) of each seed's
delivered greedy policy and of its final network's, against the optimum: the return of the greedy policy
of Q* at the agent's gamma. The best any policy can do within the limit (finite-horizon dynamic
programming) is reported beside it. A seed is "within 2%" when its return is at least the optimum less
0.02 |optimum| (above the optimum is better still: the greedy policy of Q* is not the best within a limit).

The delivered agent is the default keep-best choice, made by greedy evaluation episodes (the model only
reports, ``select_by=episodes``); the final network is the last one. Both figures are exact, from the model.

Random maps: ``generate_random_map(size, seed=s)`` slippery, sizes 5, 6, 7, 8, 8 for seeds 0-4, through
FrozenLake-v1 (its 100-step limit); ``FrozenLake-v1:8x8`` is FrozenLake8x8's map under FrozenLake-v1's id
(100 steps, not 200), which gets the derived settings where FrozenLake8x8-v1 gets its preset.

Run:  .venv/bin/python bench/toy_text.py [--envs Taxi-v4,map5s0] [--agents dqn,tabular] [--no-record]
Rows go to bench/results/toy_text.jsonl (``bench/record.py``); ``scripts/bench_tables.py`` makes the table.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

import numpy as np
import record  # bench/ is on the path when run as a script
from gymnasium.envs.toy_text.frozen_lake import generate_random_map

from qlearn.derived import CHECKED_ON, DESIGNED_ON
from qlearn.envs import TabularMDP, make_env, value_iteration
from qlearn.envs.tabular import UNLIMITED_HORIZON, greedy_policy, policy_returns
from qlearn.spec import RunSpec
from qlearn.threads import configure_threads
from qlearn.training.runner import run

MAPS = {f"map{min(5 + s, 8)}s{s}": (min(5 + s, 8), s) for s in range(5)}
ENVS = ["FrozenLake-v1", "FrozenLake8x8-v1", "FrozenLake-v1:8x8", "CliffWalking-v1", "CliffWalkingSlippery-v1",
        "Taxi-v4", *MAPS]


def env_of(name: str) -> tuple[str, dict]:
    """(env id, env kwargs) of a table row's name: a registered id, or ``mapNsS`` (a random map)."""
    if name in MAPS:
        size, seed = MAPS[name]
        return "FrozenLake-v1", {"desc": generate_random_map(size, seed=seed)}
    if name == "FrozenLake-v1:8x8":  # FrozenLake8x8's map under FrozenLake-v1's id: not the preset's 16 states
        return "FrozenLake-v1", {"map_name": "8x8"}
    return name, {}


def best_within_limit(mdp: TabularMDP) -> float:
    """The highest expected return any (time-dependent) policy reaches within the horizon."""
    v = np.zeros(mdp.n_states)
    for _ in range(mdp.horizon or UNLIMITED_HORIZON):
        v = (mdp.reward + mdp.cont @ v).max(axis=1)
    return float(mdp.isd @ v)


def role(name: str) -> str:
    env_id, kwargs = env_of(name)
    if "desc" in kwargs:
        return "designed on" if MAPS[name][0] <= 6 else "checked on"
    if kwargs:
        return "checked on"
    if env_id in ("FrozenLake-v1", "FrozenLake8x8-v1"):
        return "preset"
    return "designed on" if any(d.startswith(env_id) for d in DESIGNED_ON) else "checked on"


def one(name: str, agent: str, seeds: list[int]) -> dict:
    env_id, kwargs = env_of(name)
    t = time.perf_counter()
    spec = RunSpec.build(env_id, agent, seeds=seeds, env_kwargs=kwargs, lockstep=True)
    res = run(spec, out=tempfile.mkdtemp(prefix="qlearn-bench-"), progress=False)
    wall = time.perf_counter() - t
    mdp = TabularMDP.from_env(make_env(env_id, **kwargs))
    q_star, _ = value_iteration(mdp, spec.agent_config.gamma)
    optimum = float(policy_returns(mdp, greedy_policy(q_star)[None])[0])
    final = [float(x) for x in res.eval_exact[-1]]  # exact, from the model (reported, not choosing)
    delivered = [float(x) for x in res.delivered_exact]
    q_error = [float(x) for x in res.delivered_q_error]
    floor = optimum - 0.02 * abs(optimum)
    within, final_within = [d >= floor for d in delivered], [f >= floor for f in final]
    return {"env": name, "env_id": env_id, "env_kwargs": kwargs, "agent": agent, "seeds": seeds,
            "role": role(name), "derived": spec.derived is not None, "steps": spec.train.steps,
            "n_envs": spec.n_envs, "optimum": optimum, "best_within_limit": best_within_limit(mdp),
            "selected_by": res.selected_by, "delivered": delivered, "final": final, "q_error": q_error,
            "within_2pct": sum(within), "final_within_2pct": sum(final_within),
            "wall_s": wall}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--envs", default=",".join(ENVS))
    ap.add_argument("--agents", default="dqn,tabular")
    ap.add_argument("--seeds", default="0,1,2,3,4")
    record.add_arguments(ap)
    args = ap.parse_args()
    configure_threads(1)
    write = record.recorder("toy_text", args)
    seeds = [int(s) for s in args.seeds.split(",")]
    print(f"stamp: {json.dumps(record.stamp())}\nrules designed on {DESIGNED_ON}; checked on {CHECKED_ON}", flush=True)
    for name in args.envs.split(","):
        for agent in args.agents.split(","):
            row = one(name, agent, seeds)
            print(json.dumps({k: row[k] for k in ("env", "agent", "optimum", "delivered", "final", "within_2pct",
                                                   "final_within_2pct", "wall_s")}), flush=True)
            write([row])
    record.show("toy_text", args=args)


if __name__ == "__main__":
    main()
