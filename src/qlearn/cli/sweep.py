"""``qlearn sweep SWEEP.yaml``: every configuration x seed of a grid or random search as Ray tasks (the
sweep file's format is documented in :mod:`qlearn.sweep`)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from qlearn.cli.common import emit_json
from qlearn.sweep import load_sweep, run_sweep


def add_parser(sub: Any) -> None:
    p = sub.add_parser("sweep", help="run a grid or random search of configs x seeds as Ray tasks")
    p.add_argument("sweep_file", metavar="SWEEP.yaml")
    p.add_argument(
        "--address",
        help="an existing Ray cluster (e.g. ray://host:10001 or auto); default: a local Ray instance on this machine",
    )
    p.add_argument("--num-cpus", type=int, help="local Ray CPUs (default: all)")
    p.add_argument("--out", default="runs", help="parent folder (default: runs)")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Handler of ``qlearn sweep`` (Ray is imported by :func:`qlearn.sweep.run_sweep` when it starts)."""
    sweep = load_sweep(args.sweep_file)
    summary = run_sweep(
        sweep, out=args.out, address=args.address, num_cpus=args.num_cpus, progress=not args.no_progress
    )
    if args.json:
        emit_json(summary)
        return 0
    print((Path(summary["folder"]) / "summary.md").read_text())
    print(f"results: {summary['folder']}")
    return 0
