"""A sweep file, read and validated, and its search space in Ray Tune's terms.

A sweep file (YAML or JSON)::

    env: FrozenLake-v1          # any env id qlearn train accepts
    agent: dqn                  # dqn, tabular or pqn
    seeds: [0, 1, 2, 3]         # or a count (seeds: 4): every trial trains these seeds in lockstep
    steps: 20000                # optional: env steps per seed (default: the preset's)
    recipe: batched             # optional: a recipe of the env's preset under every trial
    envs: 32                    # optional: envs per agent (default: the recipe's, else the agent's)
    env_kwargs: {is_slippery: true}
    search: grid                # grid (every combination), random or optuna (TPE)
    samples: 8                  # random and optuna: how many trials
    random_seed: 0              # random and optuna: the search's seed
    scheduler: asha             # optional: stop bad trials early (default: none)
    asha: {grace_period: 5000, reduction_factor: 3}   # optional, in env steps
    cpus_per_trial: 1           # Ray CPUs each trial holds (default 1; each trial runs torch on one thread)
    params:                     # --set keys and their values
      lr: {loguniform: [0.0001, 0.01]}
      batch_size: [64, 256]
    set: [eval_every=1000]      # fixed --set values for every trial

A value in ``params`` is one of: a list (grid: every value; random and optuna: a categorical choice,
since Optuna takes no grid), ``{grid: [...]}`` (grid search only), ``{choice: [...]}``,
``{uniform: [low, high]}``, ``{loguniform: [low, high]}``, ``{randint: [low, high]}`` (high excluded, as
in Tune), or the older ``{low: .., high: .., log: true}``. Sweep files written for the task-per-seed
sweeps read the same; each trial now trains all of ``seeds`` in one process.
"""

from __future__ import annotations

import itertools
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qlearn.errors import QlearnError, did_you_mean

KNOWN_KEYS = {
    "env", "agent", "seeds", "steps", "recipe", "envs", "env_kwargs", "search", "samples", "random_seed",
    "scheduler", "asha", "cpus_per_trial", "params", "set",
}  # fmt: skip
SEARCHES = ("grid", "random", "optuna")
KINDS = ("grid", "choice", "uniform", "loguniform", "randint")
ASHA_KEYS = {"grace_period", "reduction_factor"}


@dataclass(frozen=True)
class Param:
    """One hyperparameter's search: ``kind`` (one of :data:`KINDS`) over ``values`` (grid, choice) or
    between ``low`` and ``high``."""

    kind: str
    values: tuple[Any, ...] = ()
    low: float = 0.0
    high: float = 0.0

    def to_tune(self) -> Any:
        from ray import tune

        if self.kind == "grid":
            return tune.grid_search(list(self.values))
        if self.kind == "choice":
            return tune.choice(list(self.values))
        if self.kind == "uniform":
            return tune.uniform(self.low, self.high)
        if self.kind == "loguniform":
            return tune.loguniform(self.low, self.high)
        return tune.randint(int(self.low), int(self.high))

    def to_dict(self) -> dict[str, Any]:
        return {self.kind: list(self.values) if self.kind in ("grid", "choice") else [self.low, self.high]}

    @property
    def log_scale(self) -> bool:
        return self.kind == "loguniform"


@dataclass(frozen=True)
class Sweep:
    env: str
    agent: str
    seeds: tuple[int, ...]
    params: dict[str, Param] = field(default_factory=dict)
    fixed: tuple[str, ...] = ()
    steps: int | None = None
    env_kwargs: dict[str, Any] | None = None
    search: str = "grid"
    samples: int = 8
    random_seed: int = 0
    scheduler: str | None = None
    asha: dict[str, int] = field(default_factory=dict)
    cpus_per_trial: float = 1.0
    recipe: str | None = None
    envs: int | None = None

    @property
    def trials(self) -> int | None:
        """Trials the search will run: the grid's size, or ``samples``."""
        if self.search != "grid":
            return self.samples
        sizes = [len(p.values) for p in self.params.values()]
        return math.prod(sizes) if sizes else 1

    def to_dict(self) -> dict[str, Any]:
        """What ``sweep.json`` records: enough to run the same search again (``from_dict``)."""
        return {
            "env": self.env, "agent": self.agent, "seeds": list(self.seeds),
            "params": {k: p.to_dict() for k, p in self.params.items()}, "set": list(self.fixed),
            "steps": self.steps, "env_kwargs": self.env_kwargs, "search": self.search, "samples": self.samples,
            "random_seed": self.random_seed, "scheduler": self.scheduler, "asha": self.asha,
            "cpus_per_trial": self.cpus_per_trial, "recipe": self.recipe, "envs": self.envs,
        }  # fmt: skip

    def job(self) -> dict[str, Any]:
        """What every trial is given besides its configuration (plain data: it travels to the nodes)."""
        return {
            "env": self.env, "agent": self.agent, "seeds": list(self.seeds), "steps": self.steps, "envs": self.envs,
            "env_kwargs": self.env_kwargs, "recipe": self.recipe, "fixed": list(self.fixed),
            "cpus": self.cpus_per_trial, "report_evals": self.scheduler is not None,
        }  # fmt: skip

    def grid_configs(self) -> list[dict[str, Any]]:
        """Every configuration of a grid search, in order (for a preview; Tune expands the same grid)."""
        keys = list(self.params)
        return [dict(zip(keys, combo)) for combo in itertools.product(*(self.params[k].values for k in keys))]


def load_sweep(path: str | os.PathLike) -> Sweep:
    """Read and validate a sweep file; every mistake is a one-line :class:`QlearnError`."""
    p = Path(path)
    if not p.is_file():
        raise QlearnError(f"no sweep file at {p}")
    text = p.read_text()
    try:
        if p.suffix == ".json":
            spec = json.loads(text)
        else:
            import yaml

            spec = yaml.safe_load(text)
    except Exception as exc:  # noqa: BLE001 - yaml and json raise their own types
        raise QlearnError(f"cannot parse {p}: {str(exc).splitlines()[0]}") from None
    if not isinstance(spec, dict):
        raise QlearnError(f"{p}: expected a mapping with env, agent, seeds, params")
    return from_dict(spec, str(p))


def from_dict(spec: dict[str, Any], where: str = "sweep") -> Sweep:
    """A :class:`Sweep` from a sweep file's mapping (or ``sweep.json``), validated."""
    unknown = set(spec) - KNOWN_KEYS
    if unknown:
        key = sorted(unknown)[0]
        raise QlearnError(f"{where}: unknown key {key!r}{did_you_mean(key, KNOWN_KEYS)}")
    if "env" not in spec:
        raise QlearnError(f"{where}: 'env' is required (e.g. env: FrozenLake-v1)")
    seeds = spec.get("seeds", 1)
    try:
        seeds = tuple(range(seeds)) if isinstance(seeds, int) else tuple(int(s) for s in seeds)
        samples = int(spec.get("samples", 8))
        random_seed = int(spec.get("random_seed", 0))
        cpus = float(spec.get("cpus_per_trial", 1))
    except (TypeError, ValueError):
        raise QlearnError(
            f"{where}: seeds must be a count or a list of integers; samples, random_seed and cpus_per_trial numbers"
        ) from None
    if not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 0:
        raise QlearnError(f"{where}: seeds must be distinct integers >= 0, at least one")
    if samples < 1 or cpus <= 0:
        raise QlearnError(f"{where}: samples must be >= 1 and cpus_per_trial > 0")
    for key in ("steps", "envs"):
        v = spec.get(key)
        if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 1):
            raise QlearnError(f"{where}: {key} must be a positive integer, got {v!r}")
    fixed = spec.get("set") or []
    if not isinstance(fixed, list) or not all(isinstance(x, str) for x in fixed):
        raise QlearnError(f"{where}: set must be a list of key=value texts, e.g. [eval_every=1000]")
    if not isinstance(spec.get("env_kwargs") or {}, dict):
        raise QlearnError(f"{where}: env_kwargs must be a mapping, e.g. {{is_slippery: false}}")
    search = spec.get("search", "grid")
    if search not in SEARCHES:
        raise QlearnError(f"{where}: search must be grid, random or optuna, not {search!r}")
    raw = spec.get("params") or {}
    if not isinstance(raw, dict):
        raise QlearnError(f"{where}: params must map setting names to values")
    params = {str(k): parse_param(str(k), v, search, where) for k, v in raw.items()}
    scheduler = spec.get("scheduler")
    if scheduler not in (None, "none", "asha"):
        raise QlearnError(f"{where}: scheduler must be asha or none, not {scheduler!r}")
    asha = spec.get("asha") or {}
    if not isinstance(asha, dict) or set(asha) - ASHA_KEYS or not all(isinstance(v, int) for v in asha.values()):
        raise QlearnError(f"{where}: asha takes integers grace_period (env steps) and reduction_factor")
    recipe = spec.get("recipe")
    sweep = Sweep(
        str(spec["env"]), str(spec.get("agent", "dqn")), seeds, params, tuple(fixed), spec.get("steps"),
        spec.get("env_kwargs"), search, samples, random_seed, None if scheduler in (None, "none") else scheduler,
        dict(asha), cpus, None if recipe is None else str(recipe), spec.get("envs"),
    )  # fmt: skip
    validate(sweep)
    return sweep


def parse_param(key: str, value: Any, search: str, where: str) -> Param:
    """One entry of ``params`` as a :class:`Param`, checked against the search that will use it."""
    if isinstance(value, list):
        value = {"grid" if search == "grid" else "choice": value}
    if isinstance(value, dict) and {"low", "high"} <= set(value) and set(value) <= {"low", "high", "log"}:
        value = {"loguniform" if value.get("log") else "uniform": [value["low"], value["high"]]}
    if not (isinstance(value, dict) and len(value) == 1 and next(iter(value)) in KINDS):
        raise QlearnError(
            f"{where}: {key!r} must be a list or one of {{grid|choice|uniform|loguniform|randint: [...]}}, "
            f"got {value!r}"
        )
    kind, args = next(iter(value.items()))
    if not isinstance(args, list) or not args:
        raise QlearnError(f"{where}: {key!r}: {kind} takes a non-empty list, got {args!r}")
    if kind == "grid" and search != "grid":
        raise QlearnError(f"{where}: {key!r}: {search} search takes no grid; give a list for a categorical choice")
    if search == "grid" and kind != "grid":
        raise QlearnError(f"{where}: {key!r}: a grid search takes lists only; use search: random or optuna for {kind}")
    if kind in ("grid", "choice"):
        return Param(kind, tuple(args))
    try:
        low, high = (float(a) for a in args)
    except (TypeError, ValueError):
        raise QlearnError(f"{where}: {key!r}: {kind} takes [low, high] numbers, got {args!r}") from None
    if not low < high or (kind == "loguniform" and low <= 0):
        raise QlearnError(
            f"{where}: {key!r}: {kind} needs low < high" + (" and low > 0" if kind == "loguniform" else "")
        )
    if kind == "randint" and (low != int(low) or high != int(high)):
        raise QlearnError(f"{where}: {key!r}: randint takes integer bounds, got {args!r}")
    return Param(kind, (), low, high)


def set_texts(config: dict[str, Any], fixed: tuple[str, ...] | list[str]) -> list[str]:
    """A trial's configuration as ``qlearn train --set`` texts, after the sweep's fixed ones."""

    def text(v: Any) -> str:
        return ",".join(map(str, v)) if isinstance(v, (list, tuple)) else str(v)

    return [*fixed, *(f"{k}={text(v)}" for k, v in config.items())]


def corners(sweep: Sweep) -> list[dict[str, Any]]:
    """Configurations that reach every bound and value of the space (what :func:`validate` checks)."""
    if sweep.search == "grid":
        return sweep.grid_configs() or [{}]
    ends: dict[str, list[Any]] = {}
    for k, p in sweep.params.items():
        if p.kind in ("grid", "choice"):
            ends[k] = list(p.values)
        elif p.kind == "randint":
            ends[k] = [int(p.low), int(p.high) - 1]
        else:
            ends[k] = [p.low, p.high]
    width = max((len(v) for v in ends.values()), default=1)
    return [{k: v[i % len(v)] for k, v in ends.items()} for i in range(width)]


def trial_spec(job: dict[str, Any], config: dict[str, Any]) -> Any:
    """The run spec of a trial: ``qlearn train --seeds K`` with the sweep's settings and ``config``'s."""
    from qlearn.spec import RunSpec

    return RunSpec.build(
        job["env"], job["agent"], seeds=job["seeds"], n_envs=job.get("envs"), steps=job.get("steps"),
        sets=set_texts(config, job["fixed"]), env_kwargs=job.get("env_kwargs"), recipe=job.get("recipe"),
        lockstep=True,
    )  # fmt: skip


def validate(sweep: Sweep) -> None:
    """Check env, agent, recipe and the space's values before any trial starts (as qlearn train would)."""
    from qlearn.envs import make_env

    make_env(sweep.env, **(sweep.env_kwargs or {})).close()
    for config in corners(sweep):
        trial_spec(sweep.job(), config)
