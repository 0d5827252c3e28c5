"""``qlearn plot RUN_DIR``: a run's figures (learning curve, Q-table heatmap, values) as PNG files in its
folder; for a ``--seeds`` folder, the curve across seeds first, then each seed's."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from qlearn.cli.common import emit_json, note
from qlearn.runs import read_run


def add_parser(sub: Any) -> None:
    p = sub.add_parser("plot", help="write a run's plots (learning curve, Q-table heatmap) as PNG files")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Handler of ``qlearn plot``."""
    from qlearn.figures import write_plots, write_seed_plots  # matplotlib: imported only when plots are drawn

    if (Path(args.run_dir) / "aggregate.json").is_file():  # a --seeds folder: the band, then each seed
        written, skipped = write_seed_plots(Path(args.run_dir))
    else:
        written, skipped = write_plots(read_run(args.run_dir))
    if args.json:
        emit_json({"plots": [str(p) for p in written], "skipped": skipped})
        return 0
    for p in written:
        print(p)
    for s in skipped:
        note(f"qlearn: note: {s}")
    return 0
