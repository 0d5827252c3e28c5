"""``qlearn optimal ENV_ID``: the exact Q*, V* and greedy policy of a tabular env by value iteration, and
the exact score of that policy within the time limit."""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np

from qlearn.cli.common import action_columns, add_env_options, emit_json, env_kwargs_from
from qlearn.envs import make_env
from qlearn.envs.info import env_info, grid_map
from qlearn.envs.tabular import (
    TabularMDP,
    Transitions,
    best_return_within,
    greedy_policy,
    success_probability,
    value_iteration,
)
from qlearn.exact_returns import ReturnDistributions, return_distributions


def add_parser(sub: Any) -> None:
    p = sub.add_parser("optimal", help="exact Q*, V* and policy of a tabular env by value iteration")
    p.add_argument("env_id", metavar="ENV_ID")
    p.add_argument("--gamma", type=float, default=0.99, help="discount (default: 0.99)")
    p.add_argument(
        "--distribution",
        action="store_true",
        help="also the exact distribution of the discounted return from each state under the greedy policy",
    )
    p.add_argument("--json", action="store_true")
    add_env_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Handler of ``qlearn optimal``."""
    env = make_env(args.env_id, **env_kwargs_from(args))
    mdp = TabularMDP.from_env(env)
    q, v = value_iteration(mdp, args.gamma)
    p = success_probability(mdp, q)
    dist = return_distributions(Transitions.from_env(env), greedy_policy(q), args.gamma) if args.distribution else None
    if args.json:
        out = {
            "env_id": args.env_id,
            "gamma": args.gamma,
            "q_table": q.tolist(),
            "v": v.tolist(),
            "policy": greedy_policy(q).tolist(),
            "expected_return": p,
            "best_within_limit": best_return_within(mdp),
            "horizon": mdp.horizon,
        }
        if env_info(env).return_is_success:
            out["success_probability"] = p
        if dist is not None:
            out["return_distribution"] = [dist.pairs(s) for s in range(mdp.n_states)]
            out["return_distribution_exact"] = dist.exact
            out["return_distribution_w1_bound"] = dist.w1_bound
        emit_json(out)
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
    print(f"the best any policy reaches within {limit} (one that may use the time left): {best_return_within(mdp):.4f}")
    if dist is not None:
        print_distribution(dist, int(np.argmax(mdp.isd)), args.gamma)
    return 0


def print_distribution(dist: ReturnDistributions, state: int, gamma: float) -> None:
    """The start state's return distribution in a few lines: its mean, spread and most likely returns."""
    returns, probs = dist.returns[state], dist.probs[state]
    how = "exact" if dist.exact else f"on a grid, within Wasserstein-1 {dist.w1_bound:.3g} of the truth"
    print(f"return distribution from state {state} under this policy (gamma={gamma:g}, no time limit; {how}):")
    cdf = np.cumsum(probs)
    quart = [float(returns[min(int(np.searchsorted(cdf, q)), len(returns) - 1)]) for q in (0.25, 0.5, 0.75)]
    print(
        f"  mean {dist.mean(state):.4f}, quartiles {quart[0]:.4f} / {quart[1]:.4f} / {quart[2]:.4f}, "
        f"{len(returns)} distinct returns"
    )
    for i in np.argsort(probs)[::-1][:5]:
        print(f"  P(G = {returns[i]:.4f}) = {probs[i]:.4f}")
