"""``qlearn train``: preset + ``--recipe`` + ``--set``, train, save the run folder, summarise.

A new run, ``--resume RUN_DIR`` and ``--config CONFIG_JSON`` each call one function of
:mod:`qlearn.training.runner`; this module only turns the options into its arguments and prints the result.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from qlearn.cli.common import EXIT_INTERRUPTED, add_env_options, env_kwargs_from, note
from qlearn.derived import envs_per_agent
from qlearn.errors import QlearnError
from qlearn.presets import one_env_recipe, recipe_envs
from qlearn.runs import read_run
from qlearn.training.runner import rerun_from_config, resume_experiment, run_experiment, run_many


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "train",
        help="train an agent and save a run folder",
        description="Train an agent; writes runs/ENV__AGENT__SEED__TIME/ with config, metrics, "
        "TensorBoard logs and checkpoints.",
    )
    p.add_argument("env_id", metavar="ENV_ID", nargs="?", help="Gymnasium id, e.g. FrozenLake-v1, CartPole-v1")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue a stopped run from its last checkpoint")
    p.add_argument("--config", metavar="CONFIG_JSON", help="run again what a run folder's config.json describes")
    p.add_argument(
        "--agent",
        choices=["dqn", "tabular", "pqn"],
        default="dqn",
        help="agent kind: dqn (replay memory, target network), tabular, pqn (rollouts of many envs, Q(lambda), "
        "LayerNorm; no replay memory); default: dqn",
    )
    p.add_argument("--steps", type=int, help="environment steps (default: the preset's)")
    p.add_argument(
        "--until",
        type=float,
        metavar="SCORE",
        help="stop once every agent's evaluation reaches SCORE (exact score, or the lower end of the 95%% CI "
        "of its evaluation episodes); --steps still bounds the run",
    )
    p.add_argument(
        "--patience",
        type=int,
        metavar="EVALS",
        help="stop once no agent's best score has risen for EVALS evaluations in a row",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument(
        "--seeds",
        type=int,
        metavar="K",
        help="train K independent agents (seeds SEED..SEED+K-1) in lockstep in one process; writes a "
        "run folder per seed and aggregate.json (mean, bootstrap 95%% CI, IQM)",
    )
    p.add_argument(
        "--envs",
        type=int,
        metavar="N",
        help="environments per agent (default: the recipe's, else 16 for pqn, else 1)",
    )
    p.add_argument(
        "--recipe",
        metavar="NAME",
        help="a named recipe of the env's preset laid over it, e.g. batched "
        "(FrozenLake-v1: 32 envs per agent; see qlearn presets)",
    )
    p.add_argument(
        "--device",
        help="cpu (default; with --config: the recorded device), cuda, cuda:N or auto; a "
        "GPU pays off with many --seeds, not for one small network",
    )
    p.add_argument("--out", default="runs", help="parent folder of the run folder (default: runs)")
    p.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a setting, e.g. --set lr=1e-3 --set hidden=128,128; repeatable",
    )
    p.add_argument(
        "--pretrain",
        metavar="TABLE",
        help="DQN only: first fit the network to a Q-table: course, optimal, or a .csv/.npy file",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--no-plots", action="store_true", help="do not write plots into the run folder at the end")
    p.add_argument("--json", action="store_true", help="print a JSON summary (run_dir, scores) on stdout")
    add_env_options(p)
    p.set_defaults(func=run_training)


def run_training(args: argparse.Namespace) -> int:
    """Handler of ``qlearn train``: resume, rerun a config, or start a new run (``args`` is only read)."""
    if args.recipe and (args.resume or args.config):
        raise QlearnError(
            "--recipe applies to a new run; --resume and --config rerun the recorded settings: drop --recipe"
        )
    if args.resume:
        result = resume_experiment(args.resume, progress=not args.no_progress)
        if hasattr(result, "aggregate"):  # a --seeds run
            return _report_many(args, result, result.agent.k)
        return _report(args, result)
    if args.config:
        return _report(
            args, rerun_from_config(args.config, out=args.out, progress=not args.no_progress, device=args.device)
        )
    return _new_run(args)


def _new_run(args: argparse.Namespace) -> int:
    """A run from an env id: one agent on one env, or (``--seeds``/``--envs``) agents x envs in lockstep."""
    device = args.device or "cpu"
    if not args.env_id:
        raise QlearnError("train needs an ENV_ID (e.g. qlearn train FrozenLake-v1) or --resume RUN_DIR")
    wanted = recipe_envs(args.env_id, args.recipe)
    n_envs = args.envs
    if n_envs is None:
        n_envs = envs_per_agent(args.env_id, args.agent, args.recipe, env_kwargs_from(args))
    elif wanted and n_envs != wanted:
        note(f"qlearn: note: recipe {args.recipe} was tuned for --envs {wanted}; running with --envs {n_envs}")
    command = "qlearn " + " ".join(sys.argv[1:])
    one_env = one_env_recipe(args.env_id, args.agent) if args.recipe is None else None  # what one env runs
    if one_env and args.pretrain and args.agent == "dqn" and args.envs is None and args.seeds is None:
        note(f"qlearn: note: --pretrain trains one agent on one env: --recipe {one_env} of {args.env_id}")
        n_envs = 1  # the course's pretraining; RunSpec.build lays the one-env recipe
    elif one_env and args.envs == 1:
        note(f"qlearn: note: --envs 1: {args.env_id}'s one-env settings, --recipe {one_env}")
    if args.seeds is not None or n_envs != 1 or env_kwargs_from(args).get("vector") == "ale":  # (a batch of one)
        return _run_many(args, n_envs=n_envs, device=device, command=command)
    result = run_experiment(
        args.env_id,
        args.agent,
        seed=args.seed,
        steps=args.steps,
        sets=sets_from(args),
        env_kwargs=env_kwargs_from(args),
        out=args.out,
        pretrain=args.pretrain,
        progress=not args.no_progress,
        command=command,
        device=device,
        recipe=args.recipe,
    )
    return _report(args, result)


def sets_from(args: argparse.Namespace) -> list[str]:
    """``--set`` values, then the stop-rule flags (``--until``, ``--patience``) as the settings they are."""
    extra = [f"until={args.until!r}"] if args.until is not None else []
    extra += [f"patience={args.patience}"] if args.patience is not None else []
    return [*args.sets, *extra]


def _run_many(args: argparse.Namespace, *, n_envs: int, device: str, command: str) -> int:
    k = 1 if args.seeds is None else args.seeds
    if k < 1:
        raise QlearnError(f"--seeds must be >= 1, got {k}")
    if args.pretrain:
        raise QlearnError("--pretrain works with one seed: drop --seeds/--envs")
    res = run_many(
        args.env_id,
        args.agent,
        seeds=range(args.seed, args.seed + k),
        n_envs=n_envs,
        steps=args.steps,
        sets=sets_from(args),
        env_kwargs=env_kwargs_from(args),
        out=args.out,
        progress=not args.no_progress,
        command=command,
        device=device,
        recipe=args.recipe,
    )
    return _report_many(args, res, k)


def _report(args: argparse.Namespace, result: Any) -> int:
    return _report_one(args, result.summary(), resume_hint=False)


def _report_one(args: argparse.Namespace, summary: dict[str, Any], *, resume_hint: bool) -> int:
    """One agent's summary (``summary.json`` with its plots): as JSON, or as lines of text."""
    run_dir = summary["run_dir"]
    if not args.no_plots and run_dir is not None:
        from qlearn.figures import write_plots  # matplotlib: imported only when plots are drawn

        written, _ = write_plots(read_run(run_dir))
        summary["plots"] = [str(p) for p in written]
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"run folder: {run_dir}")
        print(
            f"{summary['steps']} steps, {summary['episodes']} episodes in {summary['wall_time']:.1f} s "
            f"({summary['sps']:.0f} steps/s)"
        )
        if summary["best_score"] is not None:
            best = summary["selection_score"] == summary["best_score"]
            kept = "best evaluated agent kept" if best else "final agent kept"
            what = "exact, from the env's model" if summary["selected_by"] == "model" else "evaluation episodes"
            print(
                f"greedy score ({what}): final {summary['final_score']:.3f}, best {summary['best_score']:.3f} "
                f"at step {summary['best_step']} ({kept})"
            )
            if summary["score_from"] == "fresh episodes":
                print(f"the kept agent on fresh evaluation episodes: {summary['score']:.3f}")
            if summary["exact_score"] is not None and summary["selected_by"] == "episodes":
                print(f"the kept agent's exact score, reported by the env's model: {summary['exact_score']:.4f}")
            if summary["q_error"] is not None:
                print(f"its largest Q-value error, max |Q - Q*|: {summary['q_error']:.4f}")
        if summary["stopped_by"]:
            print(f"stopped early: {summary['stopped_by']}")
        for p in summary.get("plots", []):
            print(f"plot: {p}")
    if summary["interrupted"]:
        hint = f" (continue with qlearn train --resume {run_dir})" if resume_hint else ""
        note(f"qlearn: interrupted at step {summary['steps']}; what it learned is saved in {run_dir}{hint}")
        return EXIT_INTERRUPTED
    return 0


def _report_many(args: argparse.Namespace, res: Any, k: int) -> int:
    if args.seeds is None and k == 1:  # one agent on many envs: reported as one run (its seed's folder)
        return _report_one(args, res.summary(0), resume_hint=True)
    agg = res.aggregate()
    if res.interrupted:
        note(
            f"qlearn: interrupted at step {res.steps}; the agents so far are saved in {res.parent} "
            f"(continue with qlearn train --resume {res.parent})"
        )
    plots: list[str] = []
    if not args.no_plots:
        from qlearn.figures import write_seed_plots  # matplotlib: imported only when plots are drawn

        plots = [str(p) for p in write_seed_plots(res.parent, each_seed=False)[0]]
    if args.json:
        print(
            json.dumps(
                {
                    "run_dir": str(res.parent),
                    "run_dirs": [str(d) for d in res.run_dirs],
                    "aggregate": agg,
                    "interrupted": res.interrupted,
                    "plots": plots,
                },
                indent=2,
            )
        )
        return EXIT_INTERRUPTED if res.interrupted else 0
    fs = agg["final_score"]
    print(f"run folder: {res.parent} (one folder per seed inside)")
    print(
        f"{k} agents x {res.n_envs} envs, {res.steps} steps each in {res.wall_time:.1f} s "
        f"({res.env_steps_per_second:.0f} env steps/s in total)"
    )
    for p in plots:
        print(f"plot: {p} (each seed's plots: qlearn plot {res.parent})")
    if res.stopped_by:
        print(f"stopped early: {res.stopped_by}")
    fresh = " (fresh evaluation episodes)" if res.score_from == "fresh episodes" else ""
    print(
        f"delivered agents' score over seeds{fresh}: mean {fs['mean']:.3f} "
        f"(95% CI [{fs['ci95'][0]:.3f}, {fs['ci95'][1]:.3f}]), "
        f"IQM {fs['iqm']:.3f}, min {fs['min']:.3f}, max {fs['max']:.3f}"
    )
    if agg["exact_scores"] is not None and agg["selected_by"] == "episodes":
        exact = agg["exact_scores"]
        print(f"their exact scores, reported by the env's model: min {min(exact):.4f}, max {max(exact):.4f}")
    return EXIT_INTERRUPTED if res.interrupted else 0
