"""``qlearn train``: preset + ``--set``, train, save the run folder, summarise."""

from __future__ import annotations

import json
import sys
from typing import Any

from qlearn.cli.main import EXIT_INTERRUPTED


def run_training(args: Any) -> int:
    from qlearn.cli.commands import env_kwargs_from
    from qlearn.training.runner import run_experiment

    result = run_experiment(args.env_id, args.agent, seed=args.seed, steps=args.steps, sets=args.sets,
                            env_kwargs=env_kwargs_from(args), out=args.out, pretrain=args.pretrain,
                            progress=not args.no_progress, command="qlearn " + " ".join(sys.argv[1:]))
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
