"""``qlearn`` command line: parser and dispatch.

Every command has ``--help`` and ``--json`` (a machine-readable summary on stdout; progress and notes go
to stderr). A user mistake prints one line ``qlearn: error: ...`` and exits with status 2, without a
traceback; Ctrl-C exits with 130 after saving what the run has.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from qlearn.errors import QlearnError

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def one_line(message: str) -> str:
    """The message with control characters escaped, so an error is always exactly one line."""
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in str(message))


class _Parser(argparse.ArgumentParser):
    """argparse that reports errors in qlearn's one-line style."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"qlearn: error: {one_line(message)} (see: {self.prog} --help)\n")


def _env_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("environment options")
    g.add_argument("--map-name", help="FrozenLake map: 4x4 or 8x8")
    g.add_argument("--map", dest="desc", help="custom FrozenLake map as rows, e.g. SFFF,FHFH,FFFH,HFFG")
    sl = g.add_mutually_exclusive_group()
    sl.add_argument("--slippery", dest="slippery", action="store_true", default=None, help="slippery ice")
    sl.add_argument("--no-slippery", dest="slippery", action="store_false", help="deterministic moves")
    g.add_argument("--env-arg", action="append", default=[], metavar="KEY=VALUE",
                   help="any other gymnasium.make keyword (JSON value or string); repeatable")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="qlearn", description="Tabular Q-learning and Deep Q-Networks you can see into.")
    parser.add_argument("--version", action="version", version=f"qlearn {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    p = sub.add_parser("train", help="train an agent and save a run folder",
                       description="Train an agent; writes runs/ENV__AGENT__SEED__TIME/ with config, metrics, "
                                   "TensorBoard logs and checkpoints.")
    p.add_argument("env_id", metavar="ENV_ID", nargs="?", help="Gymnasium id, e.g. FrozenLake-v1, CartPole-v1")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue a stopped run from its last checkpoint")
    p.add_argument("--config", metavar="CONFIG_JSON", help="run again what a run folder's config.json describes")
    p.add_argument("--agent", choices=["dqn", "tabular"], default="dqn", help="agent kind (default: dqn)")
    p.add_argument("--steps", type=int, help="environment steps (default: the preset's)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--seeds", type=int, metavar="K",
                   help="train K independent agents (seeds SEED..SEED+K-1) in lockstep in one process; writes a "
                        "run folder per seed and aggregate.json (mean, bootstrap 95%% CI, IQM)")
    p.add_argument("--envs", type=int, metavar="N", help="environments per agent (default: the recipe's, else 1)")
    p.add_argument("--recipe", metavar="NAME", help="a named recipe of the env's preset laid over it, e.g. batched "
                                                    "(FrozenLake-v1: 32 envs per agent; see qlearn presets)")
    p.add_argument("--device", help="cpu (default; with --config: the recorded device), cuda, cuda:N or auto; a "
                                    "GPU pays off with many --seeds, not for one small network")
    p.add_argument("--out", default="runs", help="parent folder of the run folder (default: runs)")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="override a setting, e.g. --set lr=1e-3 --set hidden=128,128; repeatable")
    p.add_argument("--pretrain", metavar="TABLE",
                   help="DQN only: first fit the network to a Q-table: course, optimal, or a .csv/.npy file")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--no-plots", action="store_true", help="do not write plots into the run folder at the end")
    p.add_argument("--json", action="store_true", help="print a JSON summary (run_dir, scores) on stdout")
    _env_options(p)

    p = sub.add_parser("evaluate", help="evaluate a trained run with confidence intervals")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--episodes", type=int, default=100, help="greedy episodes (default: 100)")
    p.add_argument("--max-steps", type=int, help="cap per episode (default: the env's time limit)")
    p.add_argument("--seed", type=int, default=12345, help="seed of the evaluation episodes")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("qtable", help="print a run's Q-table beside a reference")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--compare", default="optimal", metavar="optimal|course|FILE",
                   help="reference table: optimal (value iteration), course (the course's table), or a "
                        ".csv/.npy file (default: optimal)")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("optimal", help="exact Q*, V* and policy of a tabular env by value iteration")
    p.add_argument("env_id", metavar="ENV_ID")
    p.add_argument("--gamma", type=float, default=0.99, help="discount (default: 0.99)")
    p.add_argument("--json", action="store_true")
    _env_options(p)

    p = sub.add_parser("play", help="play FrozenLake in the terminal, with the agent's advice")
    p.add_argument("env_id", metavar="ENV_ID", nargs="?", default="FrozenLake-v1")
    p.add_argument("--run", metavar="RUN_DIR", help="show this run's Q-values and suggested move")
    p.add_argument("--seed", type=int, default=None, help="seed of the slippery ice")
    p.add_argument("--json", action="store_true", help="no board; at the end, every move and game as JSON "
                                                       "(for scripted play: keys on stdin)")
    _env_options(p)

    p = sub.add_parser("plot", help="write a run's plots (learning curve, Q-table heatmap) as PNG files")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("render", help="animate greedy episodes of a run (GIF, or a window with --human)")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--episodes", type=int, default=3, help="greedy episodes (default: 3)")
    p.add_argument("--out", help="GIF or MP4 file (default: RUN_DIR/episodes.gif)")
    p.add_argument("--fps", type=int, default=0, help="frames per second (default: 6 for grid worlds, 30 otherwise)")
    p.add_argument("--seed", type=int, default=0, help="seed of the first episode")
    p.add_argument("--human", action="store_true", help="show the episodes in a window instead")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("report", help="one self-contained HTML page for one or more runs")
    p.add_argument("run_dirs", metavar="RUN_DIR", nargs="+")
    p.add_argument("--out", help="HTML file (default: RUN_DIR/report.html for one run, report.html for several)")
    p.add_argument("--episodes", type=int, default=100, help="greedy evaluation episodes per run (default: 100)")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("sweep", help="run a grid or random search of configs x seeds as Ray tasks")
    p.add_argument("sweep_file", metavar="SWEEP.yaml")
    p.add_argument("--address", help="an existing Ray cluster (e.g. ray://host:10001 or auto); default: a local "
                                     "Ray instance on this machine")
    p.add_argument("--num-cpus", type=int, help="local Ray CPUs (default: all)")
    p.add_argument("--out", default="runs", help="parent folder (default: runs)")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("presets", help="show the tuned settings stored per environment")
    p.add_argument("env_id", nargs="?", metavar="ENV_ID")
    p.add_argument("--json", action="store_true")
    return parser


def _version() -> str:
    from qlearn import __version__

    return __version__


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from qlearn.cli import commands

    try:
        return getattr(commands, f"cmd_{args.command}")(args) or 0
    except ModuleNotFoundError as exc:  # an optional piece (e.g. pygame for rendering) is missing
        print(f"qlearn: error: {exc.name} is not installed ({one_line(exc)}); install it with: pip install {exc.name}",
              file=sys.stderr)
        return EXIT_USAGE
    except QlearnError as exc:
        print(f"qlearn: error: {one_line(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except UnicodeError as exc:  # e.g. a path that is not valid UTF-8
        print(f"qlearn: error: a name or path is not valid text ({one_line(exc)})", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("qlearn: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # e.g. `qlearn qtable RUN | head`
        return 0
    except OSError as exc:  # a full disk, a read-only folder: say which file and why, keep what was written
        where = f" ({exc.filename})" if exc.filename else ""
        print(one_line(f"qlearn: error: cannot write or read a file{where}: {exc.strerror or exc}"), file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
