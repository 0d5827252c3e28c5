"""``qlearn train``: preset + ``--set``, train, save the run folder, summarise."""

from __future__ import annotations

import json
import sys
from typing import Any

from qlearn.cli.main import EXIT_INTERRUPTED


def run_training(args: Any) -> int:
    from qlearn.cli.commands import env_kwargs_from
    from qlearn.training.runner import run_experiment

    if args.recipe and (args.resume or args.config):
        from qlearn.errors import QlearnError

        raise QlearnError("--recipe applies to a new run; --resume and --config rerun the recorded settings: drop --recipe")
    if args.resume:
        from qlearn.training.runner import resume_experiment

        result = resume_experiment(args.resume, progress=not args.no_progress)
        if hasattr(result, "aggregate"):  # a --seeds run
            return _report_many(args, result, result.agent.k)
        return _report(args, result)
    if args.config:
        from qlearn.training.runner import rerun_from_config

        return _report(args, rerun_from_config(args.config, out=args.out, progress=not args.no_progress,
                                               device=args.device))
    args.device = args.device or "cpu"
    if not args.env_id:
        from qlearn.errors import QlearnError

        raise QlearnError("train needs an ENV_ID (e.g. qlearn train FrozenLake-v1) or --resume RUN_DIR")
    from qlearn.presets import recipe_envs

    wanted = recipe_envs(args.env_id, args.recipe)
    if args.envs is None:
        args.envs = wanted or 1
    elif wanted and args.envs != wanted:
        print(f"qlearn: note: recipe {args.recipe} was tuned for --envs {wanted}; running with --envs {args.envs}",
              file=sys.stderr)
    if args.seeds is not None or args.envs != 1:
        return _run_many(args)
    result = run_experiment(args.env_id, args.agent, seed=args.seed, steps=args.steps, sets=args.sets,
                            env_kwargs=env_kwargs_from(args), out=args.out, pretrain=args.pretrain,
                            progress=not args.no_progress, command="qlearn " + " ".join(sys.argv[1:]),
                            device=args.device, recipe=args.recipe)
    return _report(args, result)


def _report(args: Any, result: Any) -> int:
    summary = result.summary()
    if not args.no_plots and result.run_dir is not None:
        from qlearn.cli.plots import write_plots
        from qlearn.runs import read_run

        written, _ = write_plots(read_run(result.run_dir))
        summary["plots"] = [str(p) for p in written]
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"run folder: {result.run_dir}")
        print(f"{result.steps} steps, {result.episodes} episodes in {result.wall_time:.1f} s "
              f"({result.sps:.0f} steps/s)")
        if result.best_score is not None:
            kept = "best evaluated agent kept" if result.delivered_score == result.best_score else "final agent kept"
            print(f"greedy score (exact success probability on tabular envs, mean return otherwise): "
                  f"final {result.final_score:.3f}, best {result.best_score:.3f} at step {result.best_step} ({kept})")
        for p in summary.get("plots", []):
            print(f"plot: {p}")
    if result.interrupted:
        print(f"qlearn: interrupted at step {result.steps}; what it learned is saved in {result.run_dir}",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    return 0


def _run_many(args: Any) -> int:
    from qlearn.cli.commands import env_kwargs_from
    from qlearn.errors import QlearnError
    from qlearn.training.runner import run_many

    k = 1 if args.seeds is None else args.seeds
    if k < 1:
        raise QlearnError(f"--seeds must be >= 1, got {k}")
    if args.pretrain:
        raise QlearnError("--pretrain works with one seed: drop --seeds/--envs")
    res = run_many(args.env_id, args.agent, seeds=range(args.seed, args.seed + k), n_envs=args.envs,
                   steps=args.steps, sets=args.sets, env_kwargs=env_kwargs_from(args), out=args.out,
                   progress=not args.no_progress, command="qlearn " + " ".join(sys.argv[1:]), device=args.device,
                   recipe=args.recipe)
    return _report_many(args, res, k)


def _report_many(args: Any, res: Any, k: int) -> int:
    agg = res.aggregate()
    if res.interrupted:
        print(f"qlearn: interrupted at step {res.steps}; the agents so far are saved in {res.parent} "
              f"(continue with qlearn train --resume {res.parent})", file=sys.stderr)
    if not args.no_plots:
        from qlearn.cli.plots import write_seed_plots

        write_seed_plots(res.parent)
    if args.json:
        print(json.dumps({"run_dir": str(res.parent), "run_dirs": [str(d) for d in res.run_dirs],
                          "aggregate": agg, "interrupted": res.interrupted}, indent=2))
        return EXIT_INTERRUPTED if res.interrupted else 0
    fs = agg["final_score"]
    print(f"run folder: {res.parent} (one folder per seed inside)")
    print(f"{k} agents x {res.n_envs} envs, {res.steps} steps each in {res.wall_time:.1f} s "
          f"({res.env_steps_per_second:.0f} env steps/s in total)")
    print(f"final score over seeds: mean {fs['mean']:.3f} (95% CI [{fs['ci95'][0]:.3f}, {fs['ci95'][1]:.3f}]), "
          f"IQM {fs['iqm']:.3f}, min {fs['min']:.3f}, max {fs['max']:.3f}")
    return EXIT_INTERRUPTED if res.interrupted else 0
