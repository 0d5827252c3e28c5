"""Benchmark results as data: one append-only JSON-lines file per benchmark, every row stamped.

``append("speed", rows)`` adds each row to ``bench/results/speed.jsonl`` as one JSON object:
``{**stamp(), "bench": "speed", **row}``. The stamp says where the figure comes from:

- ``commit``: ``git rev-parse HEAD`` of this checkout, and ``dirty``: whether tracked files other than
  ``bench/results/`` differ from it (``git status --porcelain --untracked-files=no``). Without git (a
  copy of the tree on a lent machine) they come from ``QLEARN_COMMIT`` / ``QLEARN_DIRTY``, else
  ``"unknown"`` / ``None``.
- ``date``: when the row was written (ISO 8601, UTC).
- ``machine``: hostname, platform, CPU model (``/proc/cpuinfo``), core count, GPU name (when torch sees
  CUDA).
- ``versions``: Python, torch, numpy, gymnasium, qlearn, and stable_baselines3 / sb3_contrib where
  installed.
- ``command``: the command line of the process.

``read("speed")`` gives the rows back, oldest first. ``scripts/bench_tables.py`` turns them into
BENCHMARKS.md's tables (for each measured case, the newest row). History is git's: a re-run appends,
and a file is never rewritten by a benchmark.

``QLEARN_BENCH_RESULTS`` points ``append``/``read`` at another folder (a lent machine's ``$OUT``; tests).
Only the standard library is imported here; torch is imported by ``stamp`` only if it is installed, for
the GPU's name.
"""

from __future__ import annotations

import argparse
import functools
import importlib.metadata
import json
import os
import platform
import socket
import subprocess
import sys
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
PACKAGES = {"torch": "torch", "numpy": "numpy", "gymnasium": "gymnasium", "qlearn": "qlearn",
            "stable_baselines3": "stable-baselines3", "sb3_contrib": "sb3-contrib"}
OPTIONAL = {"stable_baselines3", "sb3_contrib"}


def results_dir() -> Path:
    """Where the ``<name>.jsonl`` files live: ``$QLEARN_BENCH_RESULTS`` or ``bench/results``."""
    return Path(os.environ.get("QLEARN_BENCH_RESULTS") or RESULTS)


def path_of(name: str) -> Path:
    return results_dir() / f"{name}.jsonl"


def _git(repo: Path, *args: str) -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout if out.returncode == 0 else None


def commit_of(repo: Path | str = ROOT) -> tuple[str, bool | None]:
    """(HEAD's hash, whether tracked files outside bench/results differ from it)."""
    repo = Path(repo)
    head = _git(repo, "rev-parse", "HEAD")
    if head is None:
        dirty = os.environ.get("QLEARN_DIRTY")
        return os.environ.get("QLEARN_COMMIT", "unknown"), (None if dirty is None else dirty not in ("", "0", "false"))
    status = _git(repo, "status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)bench/results")
    return head.strip(), (None if status is None else bool(status.strip()))


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _gpu() -> str | None:
    try:
        import torch
    except ImportError:
        return None
    try:
        return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except Exception:  # a broken driver is not a reason to lose a benchmark's rows
        return None


def machine() -> dict:
    return {"hostname": socket.gethostname(), "platform": platform.platform(), "cpu": _cpu_model(),
            "cores": os.cpu_count(), "gpu": _gpu()}


def _version(module: str, dist: str) -> str | None:
    mod = sys.modules.get(module)  # an imported module knows best (a tree on PYTHONPATH has no metadata)
    if mod is not None and getattr(mod, "__version__", None):
        return str(mod.__version__)
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def versions() -> dict:
    out = {"python": platform.python_version()}
    for module, dist in PACKAGES.items():
        v = _version(module, dist)
        if v is not None or module not in OPTIONAL:
            out[module] = v
    return out


@functools.lru_cache(maxsize=None)
def _fixed(repo: str) -> tuple[str, bool | None, str, str]:
    commit, dirty = commit_of(repo)
    return commit, dirty, json.dumps(machine()), json.dumps(versions())


def stamp(repo: Path | str = ROOT) -> dict:
    """Where and when a row is measured: commit, dirty, date, machine, versions, command.

    Commit, machine and versions are read once per process (the code that runs is the code that was
    there at the first stamp); the date is the time of the call.
    """
    commit, dirty, mach, vers = _fixed(str(repo))
    return {"commit": commit, "dirty": dirty, "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "machine": json.loads(mach), "versions": json.loads(vers), "command": " ".join(sys.argv)}


def append(name: str, rows: Iterable[dict], path: Path | str | None = None) -> Path:
    """Append ``rows`` to ``bench/results/<name>.jsonl`` (or ``path``), each as ``{**stamp, "bench": name, **row}``."""
    rows = list(rows)
    target = Path(path) if path else path_of(name)
    if rows:
        head = {**stamp(), "bench": name}
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "a") as fh:
            for row in rows:
                fh.write(json.dumps({**head, **row}) + "\n")
    return target


def read(name: str, path: Path | str | None = None) -> list[dict]:
    """The rows of ``bench/results/<name>.jsonl`` (or ``path``), oldest first; [] if there is none."""
    target = Path(path) if path else path_of(name)
    if not target.exists():
        return []
    with open(target) as fh:
        return [json.loads(line) for line in fh if line.strip()]


def add_arguments(ap: argparse.ArgumentParser) -> None:
    """The options every benchmark takes for its rows: ``--json FILE`` and ``--no-record``."""
    ap.add_argument("--json", metavar="FILE", help="append the rows to FILE instead of bench/results/NAME.jsonl")
    ap.add_argument("--no-record", action="store_true", help="print only: append no rows (quick checks)")


def recorder(name: str, args: argparse.Namespace):
    """A function ``rows -> None`` that appends them as ``add_arguments``' options say."""
    def write(rows: Iterable[dict]) -> None:
        if not getattr(args, "no_record", False):
            append(name, rows, getattr(args, "json", None))
    return write


def show(*tables: str, args: argparse.Namespace | None = None) -> None:
    """Print BENCHMARKS.md's tables ``tables`` from the rows recorded so far (``scripts/bench_tables.py``
    renders them: one table code for the script's output and the document)."""
    if args is not None and getattr(args, "no_record", False):
        return
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_tables", ROOT / "scripts" / "bench_tables.py")
    assert spec is not None and spec.loader is not None
    tables_mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tables_mod)
    where = Path(args.json).parent if args is not None and getattr(args, "json", None) else results_dir()
    data = tables_mod.load(where)
    for name in tables:
        print("\n" + "\n".join(tables_mod.TABLES[name](data).render()), flush=True)
