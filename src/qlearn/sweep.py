"""Sweeps of configurations x seeds as Ray tasks, on this machine or an existing Ray cluster.

A sweep file (YAML or JSON)::

    env: FrozenLake-v1          # any env id qlearn train accepts
    agent: dqn                  # dqn, tabular or pqn
    seeds: [0, 1, 2, 3]         # or a count: seeds: 4
    steps: 20000                # optional: steps per run (default: the preset's)
    env_kwargs: {is_slippery: true}
    search: grid                # grid (every combination) or random (``samples`` draws)
    samples: 8                  # random search only
    random_seed: 0              # random search only
    params:                     # --set keys; grid: a list of values each
      lr: [0.001, 0.0003]       # random: a list (uniform choice) or {low, high, log}
      batch_size: [64, 256]
    set: [eval_every=1000]      # fixed --set values for every run

Each (configuration, seed) is one Ray task running exactly ``qlearn train`` (``run_experiment``) with one
CPU and one torch thread. Results land in one folder: ``results.csv`` (one row per run),
``summary.json`` and ``summary.md`` (per configuration: mean score, bootstrap 95% CI, IQM; and the
best configuration), beside the run folders.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from qlearn.errors import QlearnError
from qlearn.stats import summarize

KNOWN_KEYS = {"env", "agent", "seeds", "steps", "env_kwargs", "search", "samples", "random_seed", "params", "set"}


@dataclass(frozen=True)
class Sweep:
    env: str
    agent: str
    seeds: tuple[int, ...]
    configs: tuple[dict[str, Any], ...]
    fixed: tuple[str, ...] = ()
    steps: int | None = None
    env_kwargs: dict[str, Any] | None = None


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
    unknown = set(spec) - KNOWN_KEYS
    if unknown:
        from qlearn.errors import did_you_mean

        key = sorted(unknown)[0]
        raise QlearnError(f"{p}: unknown key {key!r}{did_you_mean(key, KNOWN_KEYS)}")
    if "env" not in spec:
        raise QlearnError(f"{p}: 'env' is required (e.g. env: FrozenLake-v1)")
    seeds = spec.get("seeds", 1)
    try:
        seeds = tuple(range(seeds)) if isinstance(seeds, int) else tuple(int(s) for s in seeds)
        samples = int(spec.get("samples", 8))
    except (TypeError, ValueError):
        raise QlearnError(f"{p}: seeds must be a count or a list of integers, samples an integer") from None
    if not seeds or samples < 1:
        raise QlearnError(f"{p}: seeds must not be empty and samples must be >= 1")
    steps = spec.get("steps")
    if steps is not None and (not isinstance(steps, int) or isinstance(steps, bool) or steps < 1):
        raise QlearnError(f"{p}: steps must be a positive integer, got {steps!r}")
    fixed = spec.get("set") or []
    if not isinstance(fixed, list) or not all(isinstance(x, str) for x in fixed):
        raise QlearnError(f"{p}: set must be a list of key=value texts, e.g. [eval_every=1000]")
    if not isinstance(spec.get("env_kwargs") or {}, dict):
        raise QlearnError(f"{p}: env_kwargs must be a mapping, e.g. {{is_slippery: false}}")
    params = spec.get("params") or {}
    if not isinstance(params, dict):
        raise QlearnError(f"{p}: params must map setting names to values")
    search = spec.get("search", "grid")
    if search == "grid":
        for k, v in params.items():
            if not isinstance(v, list) or not v:
                raise QlearnError(f"{p}: grid values of {k!r} must be a non-empty list")
        keys = list(params)
        configs = tuple(dict(zip(keys, combo)) for combo in itertools.product(*(params[k] for k in keys))) or ({},)
    elif search == "random":
        rng = np.random.default_rng(int(spec.get("random_seed", 0)))
        configs = tuple({k: _draw(k, v, rng, p) for k, v in params.items()} for _ in range(samples))
    else:
        raise QlearnError(f"{p}: search must be grid or random, not {search!r}")
    sweep = Sweep(
        str(spec["env"]), str(spec.get("agent", "dqn")), seeds, configs, tuple(fixed), steps, spec.get("env_kwargs")
    )
    _validate(sweep)
    return sweep


def _draw(key: str, dist: Any, rng: np.random.Generator, p: Path) -> Any:
    if isinstance(dist, list) and dist:
        return dist[int(rng.integers(len(dist)))]
    if isinstance(dist, dict) and {"low", "high"} <= set(dist):
        lo, hi = float(dist["low"]), float(dist["high"])
        if dist.get("log"):
            return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))
        return float(rng.uniform(lo, hi))
    raise QlearnError(f"{p}: random values of {key!r} must be a list or {{low: .., high: .., log: true}}")


def _sets(config: dict[str, Any], fixed: tuple[str, ...]) -> list[str]:
    def text(v: Any) -> str:
        return ",".join(map(str, v)) if isinstance(v, (list, tuple)) else str(v)

    return [*fixed, *(f"{k}={text(v)}" for k, v in config.items())]


def _validate(sweep: Sweep) -> None:
    """Check env, agent and every configuration before any task starts (same checks as qlearn train)."""
    from qlearn.agents import agent_classes
    from qlearn.config import TrainConfig, parse_sets, with_overrides
    from qlearn.envs import make_env

    _, cfg_cls = agent_classes(sweep.agent)
    make_env(sweep.env, **(sweep.env_kwargs or {})).close()
    for config in sweep.configs:
        agent_sets, train_sets = parse_sets(_sets(config, sweep.fixed), cfg_cls, TrainConfig)
        with_overrides(cfg_cls(), agent_sets)
        with_overrides(TrainConfig(), train_sets)


def _run_one(
    env_id: str, agent: str, seed: int, sets: list[str], steps: int | None, env_kwargs: dict | None, out: str
) -> dict[str, Any]:
    os.environ.setdefault("QLEARN_THREADS", "1")
    from qlearn.training.runner import run_experiment

    t = time.perf_counter()
    res = run_experiment(
        env_id, agent, seed=seed, steps=steps, sets=sets, env_kwargs=env_kwargs, out=out, progress=False
    )
    return {
        "score": res.delivered_score,
        "run_dir": str(res.run_dir),
        "wall": time.perf_counter() - t,
        "steps": res.steps,
    }


def run_sweep(
    sweep: Sweep, *, out: str = "runs", address: str | None = None, num_cpus: int | None = None, progress: bool = True
) -> dict[str, Any]:
    """Run every (configuration, seed) as a Ray task; return and write the summary."""
    import ray

    from qlearn.runs import new_run_dir, write_json

    folder = new_run_dir(out, sweep.env, sweep.agent, "sweep")
    import logging

    quiet: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.WARNING}
    if address:
        ray.init(address=address, **quiet)
    else:
        ray.init(
            num_cpus=num_cpus or os.cpu_count(), include_dashboard=False, object_store_memory=100 * 1024 * 1024, **quiet
        )
    try:
        task = ray.remote(num_cpus=1)(_run_one)
        jobs = {}
        for ci, config in enumerate(sweep.configs):
            for seed in sweep.seeds:
                ref = task.remote(
                    sweep.env,
                    sweep.agent,
                    seed,
                    _sets(config, sweep.fixed),
                    sweep.steps,
                    sweep.env_kwargs,
                    str(folder.resolve()),
                )
                jobs[ref] = (ci, seed)
        rows = []
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(jobs), unit="run", desc=f"sweep {sweep.env}")
        pending = list(jobs)
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            for ref in done:
                ci, seed = jobs[ref]
                try:
                    res = ray.get(ref)
                except ray.exceptions.RayTaskError as exc:
                    res = {
                        "score": float("nan"),
                        "run_dir": "",
                        "wall": 0.0,
                        "steps": 0,
                        "error": str(exc).splitlines()[-1],
                    }
                rows.append({"config": ci, "seed": seed, **sweep.configs[ci], **res})
                if bar is not None:
                    bar.update(1)
        if bar is not None:
            bar.close()
    finally:
        ray.shutdown()
    rows.sort(key=lambda r: (r["config"], r["seed"]))
    summary = _summarize(sweep, rows)
    _write_results(folder, sweep, rows)
    write_json(folder / "summary.json", summary)
    (folder / "summary.md").write_text(_markdown(sweep, summary))
    summary["folder"] = str(folder)
    return summary


def _summarize(sweep: Sweep, rows: list[dict[str, Any]]) -> dict[str, Any]:
    per_config = []
    for ci, config in enumerate(sweep.configs):
        scores = np.array([r["score"] for r in rows if r["config"] == ci], dtype=float)
        ok = scores[np.isfinite(scores)]
        stats = summarize(ok) if len(ok) else {"mean": float("nan"), "n": 0}
        per_config.append({"config": ci, "params": config, "failed": int(len(scores) - len(ok)), **stats})
    ranked = [c for c in per_config if c.get("n")]
    best = max(ranked, key=lambda c: c["mean"]) if ranked else None
    return {"env": sweep.env, "agent": sweep.agent, "seeds": list(sweep.seeds), "configs": per_config, "best": best}


def _write_results(folder: Path, sweep: Sweep, rows: list[dict[str, Any]]) -> None:
    import csv

    keys = [
        "config",
        "seed",
        *sorted({k for c in sweep.configs for k in c}),
        "score",
        "steps",
        "wall",
        "run_dir",
        "error",
    ]
    with open(folder / "results.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=keys, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)


def _markdown(sweep: Sweep, summary: dict[str, Any]) -> str:
    lines = [
        f"# Sweep: {sweep.agent} on {sweep.env}, seeds {list(sweep.seeds)}",
        "",
        "| config | params | mean score | 95% CI | IQM | n |",
        "|---|---|---|---|---|---|",
    ]
    for c in summary["configs"]:
        ci = c.get("ci95", [float("nan")] * 2)
        lines.append(
            f"| {c['config']} | {json.dumps(c['params'])} | {c['mean']:.4g} | [{ci[0]:.4g}, {ci[1]:.4g}] | "
            f"{c.get('iqm', float('nan')):.4g} | {c.get('n', 0)} |"
        )
    if summary["best"]:
        lines += ["", f"Best: config {summary['best']['config']} {json.dumps(summary['best']['params'])}"]
    return "\n".join(lines) + "\n"
