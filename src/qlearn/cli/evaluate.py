"""``qlearn evaluate RUN_DIR``: greedy episodes of a run's agent, with confidence intervals and, where the
env has a model, the exact score of its greedy policy; for Atari the human-normalized score too, and for
pixel games the protocol they were played under."""

from __future__ import annotations

import argparse
from typing import Any

from qlearn.cli.common import emit_json, exact_score
from qlearn.envs.info import env_info
from qlearn.envs.pixels import human_normalized, protocol_of
from qlearn.errors import QlearnError
from qlearn.evaluation import evaluate
from qlearn.runs import read_run
from qlearn.threads import configure_threads


def add_parser(sub: Any) -> None:
    p = sub.add_parser("evaluate", help="evaluate a trained run with confidence intervals")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--episodes", type=int, default=100, help="greedy episodes (default: 100)")
    p.add_argument("--max-steps", type=int, help="cap per episode (default: the env's time limit)")
    p.add_argument("--seed", type=int, default=12345, help="seed of the evaluation episodes")
    p.add_argument(
        "--epsilon", type=float, default=0.0, help="random action probability (default 0: greedy; Atari papers: 0.05)"
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Handler of ``qlearn evaluate``."""
    configure_threads()
    if args.episodes < 1:
        raise QlearnError(f"--episodes must be >= 1, got {args.episodes}")
    if args.max_steps is not None and args.max_steps < 1:
        raise QlearnError(f"--max-steps must be >= 1, got {args.max_steps}")
    run_info = read_run(args.run_dir)
    env = run_info.make_env()
    agent = run_info.load_agent(env)
    res = evaluate(agent, env, args.episodes, args.max_steps, seed=args.seed, epsilon=args.epsilon)
    out = res.to_dict()
    out["epsilon"] = args.epsilon
    hns = human_normalized(run_info.env_id, res.mean_return)
    if hns is not None:
        out["human_normalized"] = hns
    protocol = protocol_of(env)
    if protocol is not None:
        out["protocol"] = protocol
    exact = exact_score(agent, env)
    # Where the return is 1 on success and 0 otherwise, the exact expected return is the success probability
    is_success = env_info(run_info.env_id).return_is_success
    if exact is not None:
        out["exact_success_probability" if is_success else "exact_expected_return"] = exact
    if args.json:
        emit_json(out)
        return 0
    print(f"{run_info.env_id}  {agent.kind} agent  ({run_info.path})")
    print(f"  episodes      {res.episodes} greedy, mean length {res.mean_length:.1f}")
    print(
        f"  mean return   {res.mean_return:.3f} ± {res.std_return:.3f} (std)   "
        f"95% CI [{res.ci95[0]:.3f}, {res.ci95[1]:.3f}]"
    )
    print(
        f"  success rate  {res.success_rate:.3f}   "
        f"95% CI [{res.success_ci95[0]:.3f}, {res.success_ci95[1]:.3f}] (Wilson)"
    )
    if hns is not None:
        print(f"  human-normalized score  {hns:.3f}   (0: random play, 1: the human tester of the DQN papers)")
    if protocol is not None:
        print("  protocol      " + ", ".join(f"{k}={v}" for k, v in protocol.items()) + f", epsilon={args.epsilon}")
    if exact is not None:
        what = "success probability" if is_success else "expected return"
        print(f"  exact {what} of the greedy policy within the time limit (from the model): {exact:.4f}")
    return 0
