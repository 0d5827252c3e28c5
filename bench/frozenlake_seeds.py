"""Seeds 0-4 on FrozenLake with default settings: qlearn DQN and tabular, and SB3 DQN beside them.

Every agent is judged the same way: the exact success probability of its greedy policy within the time
limit, computed from the env's own transition model (no sampling noise). qlearn runs go through
``run_experiment``, exactly what ``qlearn train ENV --agent A --seed S`` does.

Run:  .venv/bin/python bench/frozenlake_seeds.py [--seeds 0,1,2,3,4] [--no-sb3] [--extra] [--json FILE | --no-record]
(``pip install -e .[bench]`` first for Stable-Baselines3.) Prints a Markdown table, and appends one row per
run to bench/results/frozenlake_seeds.jsonl (``bench/record.py``; ``scripts/bench_tables.py`` makes
BENCHMARKS.md's tables from them).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

import numpy as np
import record  # bench/ is on the path when run as a script
import torch

from qlearn.envs import TabularMDP, make_env, success_probability, value_iteration
from qlearn.reference import optimal_under
from qlearn.threads import configure_threads
from qlearn.training.runner import run_experiment


def qlearn_run(env_id: str, agent: str, seed: int, out: str, env_kwargs: dict | None = None) -> dict:
    t = time.perf_counter()
    res = run_experiment(env_id, agent, seed=seed, out=out, env_kwargs=env_kwargs, progress=False)
    wall = time.perf_counter() - t
    env = make_env(env_id, **(env_kwargs or {}))
    mdp = TabularMDP.from_env(env)
    q = res.agent.q_table()
    q_star, _ = value_iteration(mdp, res.agent.config.gamma)
    live = ~mdp.terminal
    first = next((h["step"] for h in res.history if h["score"] >= 0.70), None)
    return {"success": success_probability(mdp, q), "final_success": res.final_score, "wall": wall,
            "steps": res.steps, "first_070": first, "agree": int(optimal_under(q, q_star)[live].sum()),
            "states": int(live.sum()), "max_diff": float(np.abs(q - q_star)[live].max()),
            "mean_diff": float(np.abs(q - q_star)[live].mean())}


def sb3_run(env_id: str, seed: int, steps: int) -> dict:
    import gymnasium as gym
    from stable_baselines3 import DQN

    env = gym.make(env_id)
    mdp = TabularMDP.from_env(env)
    t = time.perf_counter()
    model = DQN("MlpPolicy", env, learning_rate=1e-3, batch_size=64, buffer_size=50_000, learning_starts=1_000,
                train_freq=4, target_update_interval=1_000, exploration_fraction=0.2, exploration_final_eps=0.05,
                gamma=0.99, policy_kwargs={"net_arch": [64, 64]}, seed=seed, device="cpu", verbose=0)
    model.learn(steps)
    wall = time.perf_counter() - t
    with torch.no_grad():
        q = model.q_net(torch.arange(mdp.n_states)).numpy()
    return {"success": success_probability(mdp, q), "wall": wall, "steps": steps}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="0,1,2,3,4")
    ap.add_argument("--no-sb3", action="store_true")
    ap.add_argument("--extra", action="store_true", help="also non-slippery 4x4 and 8x8")
    record.add_arguments(ap)
    args = ap.parse_args()
    configure_threads(1)
    seeds = [int(s) for s in args.seeds.split(",")]
    out = tempfile.mkdtemp(prefix="qlearn-bench-")
    rows: dict = {}
    print(f"stamp: {json.dumps(record.stamp())}", flush=True)
    for seed in seeds:
        for agent in ("dqn", "tabular"):
            rows[(agent, seed)] = r = qlearn_run("FrozenLake-v1", agent, seed, out)
            print(f"qlearn {agent} seed {seed}: {r}", flush=True)
        if not args.no_sb3:
            rows[("sb3", seed)] = r = sb3_run("FrozenLake-v1", seed, rows[("dqn", seed)]["steps"])
            print(f"sb3 dqn seed {seed}: {r}", flush=True)
    save = record.recorder("frozenlake_seeds", args)
    save({"env": "FrozenLake-v1", "slippery": True, "lib": "sb3" if a == "sb3" else "qlearn",
          "agent": "dqn" if a == "sb3" else a, "seed": s, **r} for (a, s), r in rows.items())
    record.show("frozenlake_slippery", args=args)
    print("\nDQN Q-table vs Q* (non-terminal states): " + "; ".join(
        f"seed {s}: greedy agrees {rows[('dqn', s)]['agree']}/{rows[('dqn', s)]['states']}, "
        f"max |diff| {rows[('dqn', s)]['max_diff']:.3f}, mean {rows[('dqn', s)]['mean_diff']:.3f}" for s in seeds))
    if args.extra:
        for env_id in ("FrozenLake-v1", "FrozenLake8x8-v1"):
            for agent in ("dqn", "tabular"):
                for seed in seeds:
                    r = qlearn_run(env_id, agent, seed, out, {"is_slippery": False})
                    print(f"qlearn {agent} {env_id} non-slippery seed {seed}: {r}", flush=True)
                    save([{"env": env_id, "slippery": False, "lib": "qlearn", "agent": agent, "seed": seed, **r}])
        record.show("frozenlake_not_slippery", args=args)


if __name__ == "__main__":
    main()
