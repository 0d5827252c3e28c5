"""Run folders: everything a run writes, and reading it back.

``runs/ENV__AGENT__SEED__TIME/`` holds ``config.json`` (environment, agent and training settings,
versions, device), ``metrics.csv`` (one row per episode), ``evals.csv`` (one row per evaluation),
TensorBoard events under ``tb/``, ``agent.pt`` (the agent the run delivers: the best evaluated one when
``keep_best`` is on), ``last.pt`` (the agent at the last step), and ``summary.json`` once it finishes.
Files are flushed as they are written, so a run that stops keeps what it wrote.
"""

from __future__ import annotations

import csv
import json
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qlearn.errors import QlearnError
from qlearn.fileio import atomic_write

CONFIG = "config.json"
AGENT = "agent.pt"
LAST = "last.pt"


def versions() -> dict[str, str]:
    import gymnasium
    import numpy
    import torch

    from qlearn.version import __version__

    return {
        "qlearn": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "gymnasium": gymnasium.__version__,
        "numpy": numpy.__version__,
        "machine": platform.machine(),
        "cpus": str(os.cpu_count()),
    }


def new_run_dir(base: str | os.PathLike, env_id: str, agent_kind: str, seed: int | str) -> Path:
    """A fresh folder named ``ENV__AGENT__SEED__TIME`` (CleanRL's naming) under ``base``."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    name = f"{env_id.replace('/', '-').replace(':', '-')}__{agent_kind}__{seed}__{stamp}"
    path = Path(base) / name
    n = 1
    while path.exists():
        n += 1
        path = Path(base) / f"{name}-{n}"
    try:
        path.mkdir(parents=True)
    except OSError as exc:
        raise QlearnError(f"cannot create run folder {path}: {exc.strerror}") from None
    return path


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write JSON atomically; a full disk or read-only folder is a clear error."""
    with atomic_write(path, "w") as fh:
        fh.write(json.dumps(data, indent=2) + "\n")


class CsvLog:
    """Append rows to a CSV file, header first, flushed on every row (or, with ``flush=False``, when the
    caller calls :meth:`flush`: many-seed runs write tens of thousands of episode rows)."""

    def __init__(self, path: Path, fields: list[str]) -> None:
        self.fields = fields
        self._fh = open(path, "a", newline="")
        self._w = csv.DictWriter(self._fh, fieldnames=fields, extrasaction="ignore")
        if path.stat().st_size == 0:
            self._w.writeheader()

    def write(self, row: dict[str, Any], flush: bool = True) -> None:
        self._w.writerow(row)
        if flush:
            self._fh.flush()

    def flush(self) -> None:
        self._fh.flush()

    def close(self) -> None:
        self._fh.close()


@dataclass
class RunInfo:
    """What :func:`read_run` finds in a run folder."""

    path: Path
    config: dict[str, Any]

    @property
    def env_id(self) -> str:
        return self.config["env_id"]

    @property
    def env_kwargs(self) -> dict[str, Any]:
        return dict(self.config.get("env_kwargs") or {})

    @property
    def agent_path(self) -> Path:
        return self.path / AGENT

    def make_env(self, render_mode: str | None = None):
        from qlearn.envs import make_env

        return make_env(self.env_id, render_mode=render_mode, **self.env_kwargs)

    def load_agent(self, env=None):
        from qlearn.agents import load_agent

        if not self.agent_path.is_file():
            raise QlearnError(f"run folder {self.path} has no {AGENT} (the run did not save an agent)")
        return load_agent(self.agent_path, env=env)


def read_run(path: str | os.PathLike) -> RunInfo:
    """Open a run folder, with a one-line error if it is missing or damaged. A ``--seeds`` folder of one seed
    (one agent trained on many envs) opens that seed's folder."""
    path = Path(path)
    if not path.exists():
        raise QlearnError(f"run folder {path} does not exist")
    if not path.is_dir():
        raise QlearnError(f"{path} is not a run folder (expected a directory with {CONFIG} and {AGENT})")
    cfg = path / CONFIG
    if not cfg.is_file():
        seeds = sorted(p.name for p in path.glob("seed_*") if p.is_dir())
        if (path / "aggregate.json").is_file() and len(seeds) == 1:  # one agent trained on many envs
            return read_run(path / seeds[0])
        if (path / "aggregate.json").is_file() and seeds:
            raise QlearnError(
                f"{path} holds {len(seeds)} seeds (qlearn train --seeds); name one of them, e.g. {path / seeds[0]}"
            )
        raise QlearnError(f"{path} is not a run folder: {CONFIG} is missing")
    try:
        config = json.loads(cfg.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
        raise QlearnError(f"{cfg} is corrupt (not valid JSON)") from None
    if (
        not isinstance(config, dict)
        or not isinstance(config.get("env_id"), str)
        or not isinstance(config.get("agent"), str)
        or not isinstance(config.get("env_kwargs") or {}, dict)
    ):
        raise QlearnError(f"{cfg} is not a qlearn run config (env_id and agent must be text, env_kwargs an object)")
    return RunInfo(path, config)
