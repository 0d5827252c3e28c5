"""``qlearn`` command line: the top-level parser, and the one place errors become exit statuses.

Each subcommand lives in its own module (``qlearn.cli.train``, ``qlearn.cli.evaluate``, ...) with an
``add_parser(sub)`` that registers its options and sets its handler (``set_defaults(func=...)``).
Every command has ``--help`` and ``--json`` (a machine-readable summary on stdout; progress and notes
go to stderr). A user mistake prints one line ``qlearn: error: ...`` and exits with status 2, without a
traceback; Ctrl-C exits with 130 after saving what the run has.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from qlearn.cli import evaluate, optimal, play, plot, presets, qtable, render, report, sweep, train
from qlearn.cli.common import EXIT_INTERRUPTED, EXIT_USAGE, Parser, one_line
from qlearn.errors import QlearnError
from qlearn.version import __version__

COMMANDS = (train, evaluate, qtable, optimal, play, plot, render, report, sweep, presets)
"""The subcommand modules, in the order ``qlearn --help`` lists them."""


def build_parser() -> argparse.ArgumentParser:
    """The full parser: ``qlearn [--version] COMMAND ...`` with every subcommand's options."""
    parser = Parser(prog="qlearn", description="Tabular Q-learning and Deep Q-Networks you can see into.")
    parser.add_argument("--version", action="version", version=f"qlearn {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` (default: ``sys.argv[1:]``), run the subcommand, and return its exit status."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args) or 0
    except ModuleNotFoundError as exc:  # an optional piece (e.g. pygame for rendering) is missing
        print(
            f"qlearn: error: {exc.name} is not installed ({one_line(exc)}); install it with: pip install {exc.name}",
            file=sys.stderr,
        )
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
