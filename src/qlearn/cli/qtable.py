"""``qlearn qtable RUN_DIR``: a run's Q-table beside a reference table (Q* by value iteration, the course's
table, or a file), with the greedy policies drawn on the env's map where it has one."""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np

from qlearn.cli.common import action_columns, emit_json
from qlearn.envs.info import env_info, grid_map
from qlearn.envs.tabular import TabularMDP, greedy_policy
from qlearn.exact_returns import compare_agent
from qlearn.reference import compare_tables, load_reference, optimal_under
from qlearn.runs import read_run


def add_parser(sub: Any) -> None:
    p = sub.add_parser("qtable", help="print a run's Q-table beside a reference")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument(
        "--compare",
        default="optimal",
        metavar="optimal|course|FILE",
        help="reference table: optimal (value iteration), course (the course's table), or a "
        ".csv/.npy file (default: optimal)",
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Handler of ``qlearn qtable``."""
    run_info = read_run(args.run_dir)
    env = run_info.make_env()
    agent = run_info.load_agent(env)
    q = agent.q_table(0)
    ref, ref_name = load_reference(args.compare, env, agent.config.gamma)
    mdp = TabularMDP.from_env(env) if hasattr(env.unwrapped, "P") else None
    mask = ~mdp.terminal if mdp is not None else np.ones(len(q), dtype=bool)
    cmp = compare_tables(q, ref, mask)
    kind = getattr(agent.config, "distributional", "none")
    check = compare_agent(agent, env)[2:4] if kind != "none" and mdp is not None else None
    if args.json:
        out = {"q_table": q.tolist(), "reference": ref.tolist(), "reference_name": ref_name, **cmp}
        if kind != "none":
            out["distributional"] = kind
            out["learned_distribution"] = learned_distributions(agent, len(q))
        if check is not None:
            out["return_distribution_w1"], out["return_distribution_w1_floor"] = check[0].tolist(), check[1].tolist()
        emit_json(out)
        return 0
    names, width = action_columns(env, q.shape[1])
    head = " ".join(f"{n:>{width}}" for n in names)
    print(f"{run_info.env_id}  {agent.kind} agent  vs  {ref_name}")
    print(f"{'state':>5} | {head} | {head} | agree")
    agree = optimal_under(q, ref)
    for s in range(len(q)):
        mark = "" if mask[s] else "  (terminal)"
        ok = "yes" if agree[s] else "NO"
        print(
            f"{s:>5} | {' '.join(f'{v:{width}.2f}' for v in q[s])} | {' '.join(f'{v:{width}.2f}' for v in ref[s])} | "
            f"{ok if mask[s] else '-'}{mark}"
        )
    print(
        f"non-terminal states: max |diff| {cmp['max_abs_diff']:.3f}, mean |diff| {cmp['mean_abs_diff']:.3f}, "
        f"greedy action is optimal under the reference on {cmp['greedy_agree']}/{cmp['states_compared']}"
    )
    if check is not None and mdp is not None:
        start = int(np.argmax(mdp.isd))
        w1, floor = check[0][mask], check[1][mask]
        print(
            f"return distributions ({kind}) against the exact ones of this greedy policy, Wasserstein-1: start state "
            f"{check[0][start]:.4f} (floor {check[1][start]:.4f}); over non-terminal states max {w1.max():.4f}, "
            f"mean {w1.mean():.4f} (floor mean {floor.mean():.4f})"
        )
    desc = grid_map(env) if mdp is not None else None
    grid = env_info(env).grid
    if desc is not None and grid is not None:
        print("learned policy:            reference policy:")
        for a, b in zip(grid.draw(desc, greedy_policy(q)), grid.draw(desc, greedy_policy(ref))):
            print(f"  {a:<24}  {b}")
    return 0


def learned_distributions(agent: Any, n_states: int) -> list[list[list[list[float]]]]:
    """For each state and action the learned return distribution as ``[return, probability]`` pairs."""
    out = []
    for state in range(n_states):
        returns, probs = agent.distribution(state)
        out.append([[[float(r), float(p)] for r, p in zip(returns[a], probs[a])] for a in range(len(returns))])
    return out
