"""``qlearn optimal ENV_ID``: the exact Q*, V* and greedy policy of a tabular env by value iteration, and
the exact score of that policy within the time limit."""

from __future__ import annotations

import argparse
from typing import Any

from qlearn.cli.common import action_columns, add_env_options, emit_json, env_kwargs_from
from qlearn.envs import make_env
from qlearn.envs.info import env_info, grid_map
from qlearn.envs.tabular import TabularMDP, greedy_policy, success_probability, value_iteration


def add_parser(sub: Any) -> None:
    p = sub.add_parser("optimal", help="exact Q*, V* and policy of a tabular env by value iteration")
    p.add_argument("env_id", metavar="ENV_ID")
    p.add_argument("--gamma", type=float, default=0.99, help="discount (default: 0.99)")
    p.add_argument("--json", action="store_true")
    add_env_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Handler of ``qlearn optimal``."""
    env = make_env(args.env_id, **env_kwargs_from(args))
    mdp = TabularMDP.from_env(env)
    q, v = value_iteration(mdp, args.gamma)
    p = success_probability(mdp, q)
    if args.json:
        emit_json(
            {
                "env_id": args.env_id,
                "gamma": args.gamma,
                "q_table": q.tolist(),
                "v": v.tolist(),
                "policy": greedy_policy(q).tolist(),
                "success_probability": p,
                "horizon": mdp.horizon,
            }
        )
        return 0
    info = env_info(env)
    names, width = action_columns(env, mdp.n_actions)
    print(f"{args.env_id}: optimal values by value iteration (gamma={args.gamma:g})")
    print(f"{'state':>5} | {' '.join(f'{n:>{width}}' for n in names)} | {'V*':>6}")
    for s in range(mdp.n_states):
        print(f"{s:>5} | {' '.join(f'{x:{width}.3f}' for x in q[s])} | {v[s]:6.3f}")
    desc = grid_map(env)
    if desc is not None and info.grid is not None:
        print("greedy policy of Q*:")
        for line in info.grid.draw(desc, greedy_policy(q)):
            print("  " + line)
    what = "success probability" if info.return_is_success else "expected return"
    limit = f"the {mdp.horizon}-step limit" if mdp.horizon else "1,000 steps (the env has no time limit)"
    print(f"exact {what} of this policy within {limit}: {p:.4f}")
    return 0
