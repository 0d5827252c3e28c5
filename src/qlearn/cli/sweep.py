"""``qlearn sweep SWEEP.yaml``: a grid, random or Optuna search on Ray Tune, each trial a configuration's
seeds trained in lockstep; ``qlearn sweep --resume DIR`` continues an interrupted one (the sweep file's
format is documented in :mod:`qlearn.sweep.spec`)."""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path
from typing import Any

from qlearn.cli.common import EXIT_INTERRUPTED, emit_json
from qlearn.errors import QlearnError


def add_parser(sub: Any) -> None:
    p = sub.add_parser("sweep", help="tune settings on Ray Tune: grid, random or Optuna search, ASHA, seeds per trial")
    p.add_argument("sweep_file", metavar="SWEEP.yaml", nargs="?")
    p.add_argument("--resume", metavar="DIR", help="continue the interrupted sweep in DIR (finished trials are kept)")
    p.add_argument(
        "--address",
        help="an existing Ray cluster (e.g. auto or HOST:6379); default: a local Ray instance on this machine",
    )
    p.add_argument(
        "--storage",
        metavar="DIR",
        help="a folder every node mounts: the sweep folder is made there and trials write into it directly "
        "(default: trials write on their node and their folders are fetched through Ray)",
    )
    p.add_argument("--num-cpus", type=int, help="local Ray CPUs (default: all)")
    p.add_argument("--out", default="runs", help="parent folder (default: runs)")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Handler of ``qlearn sweep`` (Ray and Tune are imported when the search starts)."""
    from qlearn.sweep import load_sweep

    try:
        import optuna  # noqa: F401 - the sweep extra: Ray Tune and Optuna
        import ray.tune  # noqa: F401
    except ImportError as exc:
        raise QlearnError(
            f"qlearn sweep needs Ray Tune and Optuna ({exc.name} is missing): pip install -e .[sweep]"
        ) from None
    from qlearn.sweep.tuner import resume_sweep, run_sweep

    if (args.sweep_file is None) == (args.resume is None):
        raise QlearnError("give a sweep file (qlearn sweep SWEEP.yaml) or --resume DIR, one of the two")
    progress = not args.no_progress
    sweep = None if args.resume else load_sweep(args.sweep_file)
    with contextlib.redirect_stdout(sys.stderr):  # Ray prints cluster events on stdout; ours is the summary
        if sweep is None:
            summary = resume_sweep(args.resume, address=args.address, num_cpus=args.num_cpus, progress=progress)
        else:
            summary = run_sweep(
                sweep, out=args.out, address=args.address, num_cpus=args.num_cpus, storage=args.storage,
                progress=progress,
            )  # fmt: skip
    if args.json:
        emit_json(summary)
    else:
        print((Path(summary["folder"]) / "summary.md").read_text())
        print(f"results: {summary['folder']}")
    if summary["interrupted"]:
        print(f"interrupted: qlearn sweep --resume {summary['folder']} runs the unfinished trials", file=sys.stderr)
        return EXIT_INTERRUPTED
    return 0
