"""One call from "environment id" to "saved run": preset, overrides, env, agent, run folder, training.

The command line's ``qlearn train`` and the benchmarks both go through :func:`run_experiment`, so a
benchmark measures exactly what a user gets.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from typing import Any

from qlearn.config import TrainConfig, parse_sets, to_dict, with_overrides
from qlearn.errors import QlearnError
from qlearn.training.result import TrainResult
from qlearn.training.trainer import train, train_many


def pick_device(device: str) -> str:
    """``cpu`` (the default: small networks are overhead-bound and a GPU only pays with many agents),
    ``cuda``/``cuda:N``, or ``auto`` (CUDA when present)."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise QlearnError(f"--device {device}: CUDA is not available on this machine (use --device cpu or auto)")
    if device != "cpu" and not device.startswith("cuda"):
        raise QlearnError(f"--device {device!r}: use cpu, cuda, cuda:N or auto")
    return device


def check_out(out: str) -> None:
    try:
        str(out).encode("utf-8")
    except UnicodeError:
        raise QlearnError(f"--out {out!r} is not a valid UTF-8 path; choose another folder name") from None


def build_agent(agent_cls: Any, env: Any, cfg: Any, **kwargs: Any) -> Any:
    """The agent, with a clear error where a setting asks for more memory than there is."""
    try:
        return agent_cls.for_env(env, cfg, **kwargs)
    except (MemoryError, OverflowError):
        raise QlearnError("the settings ask for more memory than this machine has (check buffer_size, hidden, "
                          "bins)") from None
    except ValueError as exc:
        if "too big" in str(exc) or "maximum supported" in str(exc):
            raise QlearnError("the settings ask for more memory than this machine has (check buffer_size, "
                              "hidden, bins)") from None
        raise
    except RuntimeError as exc:
        if "alloc" in str(exc).lower() or "memory" in str(exc).lower():
            raise QlearnError("the settings ask for more memory than this machine has (check buffer_size, "
                              "hidden, bins)") from None
        raise


def resolve(env_id: str, agent_kind: str, seed: int, steps: int | None, sets: Sequence[str],
            env_kwargs: dict[str, Any], recipe: str | None = None) -> tuple[Any, Any, Any, TrainConfig]:
    """Env, agent class and validated configs: the preset for ``env_id`` first (with ``recipe``'s settings
    over it), then ``sets`` on top."""
    from qlearn.agents import agent_classes
    from qlearn.envs import make_env
    from qlearn.presets import preset

    agent_cls, cfg_cls = agent_classes(agent_kind)
    agent_sets, train_sets = parse_sets(list(sets), cfg_cls, TrainConfig)
    env = make_env(env_id, **env_kwargs)
    agent_preset, train_preset = preset(env_id, agent_kind, recipe)
    if steps is not None:
        train_sets["steps"] = steps
    cfg = with_overrides(cfg_cls(), {**agent_preset, **agent_sets})
    tcfg = with_overrides(TrainConfig(), {**train_preset, **train_sets, "seed": seed})
    return agent_cls, env, cfg, tcfg


def run_experiment(env_id: str, agent_kind: str = "dqn", *, seed: int = 0, steps: int | None = None,
                   sets: Sequence[str] = (), env_kwargs: dict[str, Any] | None = None, out: str = "runs",
                   pretrain: str | None = None, progress: bool = True, command: str | None = None,
                   device: str = "cpu", recipe: str | None = None) -> TrainResult:
    """Train ``agent_kind`` on ``env_id`` with the env's preset, then ``sets`` (``"key=value"``) on top.

    Everything is validated before the run folder is created, so a mistake leaves nothing behind.
    """
    from qlearn.runs import new_run_dir, versions, write_json
    from qlearn.threads import configure_threads

    env_kwargs = dict(env_kwargs or {})
    agent_cls, env, cfg, tcfg = resolve(env_id, agent_kind, seed, steps, sets, env_kwargs, recipe)
    if pretrain and agent_kind != "dqn":
        raise QlearnError("--pretrain fits a network: use it with --agent dqn")
    check_out(out)
    device = pick_device(device)
    agent = build_agent(agent_cls, env, cfg, seed=tcfg.seed, device=device)
    table = None
    if pretrain:
        from qlearn.reference import load_reference

        table, table_name = load_reference(pretrain, env, cfg.gamma)
    threads = configure_threads()

    run_dir = new_run_dir(out, env_id, agent_kind, tcfg.seed)
    write_json(run_dir / "config.json", {
        "env_id": env_id, "env_kwargs": env_kwargs, "agent": agent_kind, "agent_config": to_dict(cfg),
        "train": to_dict(tcfg), "pretrain": pretrain, "device": device, "recipe": recipe, "torch_threads": threads,
        "versions": versions(), "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "command": command})
    if table is not None:
        from qlearn.agents.pretrain import pretrain as fit

        mse = fit(agent, table)
        print(f"pretrained on {table_name}: mse {mse:.2e}", file=sys.stderr)
    return train(agent, env, tcfg.steps, seed=tcfg.seed, run_dir=run_dir, eval_every=tcfg.eval_every,
                 eval_episodes=tcfg.eval_episodes, keep_best=tcfg.keep_best, progress=progress,
                 checkpoint_every=tcfg.checkpoint_every)


def rerun_from_config(path: str, *, out: str = "runs", progress: bool = True, device: str | None = None) -> TrainResult:
    """Run again exactly what a run folder's ``config.json`` describes (env, agent settings, training
    settings, seed, pretraining table, device), into a new run folder. ``device`` overrides the recorded
    one. A config from a newer qlearn or with unknown keys is refused."""
    import json
    from pathlib import Path

    from qlearn import __version__

    p = Path(path)
    if p.is_dir():
        p = p / "config.json"
    if not p.is_file():
        raise QlearnError(f"no config file at {p}")
    try:
        cfg = json.loads(p.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise QlearnError(f"{p} is not valid JSON") from None
    if not isinstance(cfg, dict) or not {"env_id", "agent", "agent_config", "train"} <= set(cfg) \
            or not isinstance(cfg["env_id"], str) or not isinstance(cfg["agent"], str) \
            or not isinstance(cfg["agent_config"], dict) or not isinstance(cfg["train"], dict) \
            or not isinstance(cfg.get("env_kwargs") or {}, dict) or not isinstance(cfg.get("versions", {}), dict):
        raise QlearnError(f"{p} is not a qlearn run config (env_id and agent as text, agent_config, train and "
                          "env_kwargs as objects are needed)")
    if cfg.get("lockstep_seeds"):
        extra = (f" --envs {cfg['n_envs']}" if cfg.get("n_envs", 1) != 1 else "") + \
            (f" --recipe {cfg['recipe']}" if cfg.get("recipe") else "")
        raise QlearnError(f"{p} belongs to a --seeds run; rerun it with qlearn train {cfg['env_id']} --seeds "
                          f"{len(cfg['lockstep_seeds'])} --seed {cfg['lockstep_seeds'][0]}{extra}")
    written_by = str(cfg.get("versions", {}).get("qlearn", "0"))
    if _version_tuple(written_by) > _version_tuple(__version__):
        raise QlearnError(f"{p} was written by qlearn {written_by}, newer than this qlearn {__version__}; upgrade")
    agent_config = legacy_agent_config(cfg["agent"], cfg["agent_config"])
    sets = [f"{k}={_as_set(v)}" for k, v in {**agent_config, **cfg["train"]}.items() if k != "seed"]
    recorded = cfg.get("device") or "cpu"
    if device is None and str(recorded).startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise QlearnError(f"{p} was recorded on {recorded} and this machine has no CUDA: add --device cpu to "
                              "rerun it on the CPU (its numbers will differ from the recorded run's)")
    pretrain = cfg.get("pretrain")
    if pretrain is not None and not isinstance(pretrain, str):
        raise QlearnError(f"{p}: pretrain must be a table name or path, got {pretrain!r}")
    return run_experiment(cfg["env_id"], cfg["agent"], seed=int(cfg["train"].get("seed", 0)), sets=sets,
                          env_kwargs=cfg.get("env_kwargs") or {}, out=out, progress=progress, pretrain=pretrain,
                          device=device or str(recorded), command=f"qlearn train --config {path}")


def legacy_agent_config(agent_kind: str, agent_config: dict[str, Any]) -> dict[str, Any]:
    """A recorded DQN config from before the ``engine`` setting trained by autograd: keep it that way, so
    ``--config`` and ``--resume`` still reproduce those runs (the numpy step draws its minibatches apart)."""
    if agent_kind == "dqn" and isinstance(agent_config, dict) and "engine" not in agent_config:
        return {**agent_config, "engine": "torch"}
    return agent_config


def _as_set(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    if value is None:
        return "none"
    return str(value)


def _version_tuple(v: str) -> tuple[int, ...]:
    parts = []
    for piece in v.split(".")[:3]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts)


def resume_experiment(run_dir: str, *, progress: bool = True) -> TrainResult:
    """Continue a run from its last checkpoint, with the settings in its ``config.json``.

    Log rows written after that checkpoint (by the process that stopped) are dropped first, so the
    finished run's files read as if it had never stopped.
    """
    from qlearn.agents import agent_classes
    from qlearn.config import from_dict
    from pathlib import Path

    from qlearn.runs import read_run
    from qlearn.training import checkpoint as ckpt

    if list(Path(run_dir).glob("seed_*")) and not (Path(run_dir) / "config.json").exists():
        return resume_many(run_dir, progress=progress)  # a --seeds run's folder
    run = read_run(run_dir)
    if run.config.get("lockstep_seeds"):
        return resume_many(run.path.parent, progress=progress)
    agent_cls, cfg_cls = agent_classes(run.config["agent"])
    try:
        cfg = from_dict(cfg_cls, legacy_agent_config(run.config["agent"], run.config["agent_config"]))
        tcfg = from_dict(TrainConfig, run.config["train"])
    except (KeyError, TypeError) as exc:
        raise QlearnError(f"{run.path / 'config.json'} is missing settings ({exc}); cannot resume") from None
    device = _resume_device(run.config.get("device"), run.path)
    payload = ckpt.load(run.path / ckpt.FILENAME)
    step = int(payload["loop"]["step"])
    if step >= tcfg.steps:
        raise QlearnError(f"run {run.path} already finished ({step} of {tcfg.steps} steps)")
    for name in ("metrics.csv", "evals.csv"):
        _truncate_log(run.path / name, step)
    env = run.make_env()
    agent = agent_cls.for_env(env, cfg, seed=tcfg.seed, device=device)
    try:  # a checkpoint in the right format but with missing or misshapen parts
        agent.load_state_dict(payload["agent"])
        agent.set_rng_state(payload["agent_rng"])
    except (KeyError, TypeError, ValueError, RuntimeError, AttributeError) as exc:
        raise QlearnError(f"{run.path / ckpt.FILENAME} is a malformed training checkpoint "
                          f"({type(exc).__name__}: {exc})") from None
    return train(agent, env, tcfg.steps, seed=tcfg.seed, run_dir=run.path, eval_every=tcfg.eval_every,
                 eval_episodes=tcfg.eval_episodes, keep_best=tcfg.keep_best, progress=progress,
                 checkpoint_every=tcfg.checkpoint_every, resume=payload)


def _resume_device(recorded: Any, where: Any) -> str:
    """The device a run recorded: where it must resume, since its checkpoint holds that device's random state."""
    import torch

    device = str(recorded or "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise QlearnError(f"run {where} was trained on {device} and its checkpoint holds that device's random "
                          "state: resume it on a machine with CUDA (or start it again there with --config)")
    return pick_device(device)


def _truncate_log(path, step: int) -> None:
    """Keep the header and the rows up to ``step`` of a CSV log."""
    if not path.is_file():
        return
    lines = path.read_text().splitlines(keepends=True)
    keep = lines[:1] + [ln for ln in lines[1:] if ln.strip() and int(float(ln.split(",", 1)[0])) <= step]
    path.write_text("".join(keep))


def run_many(env_id: str, agent_kind: str = "dqn", *, seeds: Sequence[int], n_envs: int = 1, steps: int | None = None,
             sets: Sequence[str] = (), env_kwargs: dict[str, Any] | None = None, out: str = "runs",
             progress: bool = True, command: str | None = None, native: bool = True, device: str = "cpu",
             recipe: str | None = None):
    """Train one agent per seed in lockstep (one process); write a run folder per seed and an aggregate.

    Layout: ``OUT/ENV__AGENT__seedsA-B__TIME/seed_S/`` (each a complete run folder) beside
    ``aggregate.json`` (final scores: mean, bootstrap 95% CI, IQM; the learning curve across seeds).
    """
    from qlearn.runs import new_run_dir, versions, write_json
    from qlearn.threads import configure_threads

    seeds = [int(s) for s in seeds]
    if len(set(seeds)) != len(seeds) or not seeds:
        raise QlearnError(f"seeds must be distinct and at least one, got {seeds}")
    if n_envs < 1:
        raise QlearnError(f"--envs must be >= 1, got {n_envs}")
    env_kwargs = dict(env_kwargs or {})
    agent_cls, env, cfg, tcfg = resolve(env_id, agent_kind, seeds[0], steps, sets, env_kwargs, recipe)
    check_out(out)
    device = pick_device(device)
    agent, venv, eval_env = _many_parts(agent_cls, env, cfg, tcfg, env_id, seeds, n_envs, native, device, env_kwargs)
    threads = configure_threads()
    parent = new_run_dir(out, env_id, agent_kind, f"seeds{seeds[0]}-{seeds[-1]}")
    run_dirs = []
    for s in seeds:
        d = parent / f"seed_{s}"
        d.mkdir()
        write_json(d / "config.json", {
            "env_id": env_id, "env_kwargs": env_kwargs, "agent": agent_kind, "agent_config": to_dict(cfg),
            "train": {**to_dict(tcfg), "seed": s}, "n_envs": n_envs, "lockstep_seeds": seeds, "device": device,
            "recipe": recipe, "native": native,
            "batched_env": type(venv).__name__, "torch_threads": threads, "versions": versions(),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "command": command})
        run_dirs.append(d)
    return _train_many_into(parent, agent, venv, eval_env, tcfg, env_id, run_dirs, progress)


def _many_parts(agent_cls: Any, env: Any, cfg: Any, tcfg: TrainConfig, env_id: str, seeds: list[int], n_envs: int,
                native: bool, device: str, env_kwargs: dict[str, Any]) -> tuple[Any, Any, Any]:
    """The stacked agent, its K x N envs and (for sampled scoring) the K x episodes evaluation envs."""
    from qlearn.envs.vector import make_batched

    from qlearn.training.scoring import EVAL_SEED_OFFSET

    agent = build_agent(agent_cls, env, cfg, seeds=seeds, device=device)
    venv = make_batched(env_id, len(seeds), n_envs, seeds=seeds, native=native, device=device, **env_kwargs)
    eval_env = None
    if not hasattr(env.unwrapped, "P"):
        eval_env = make_batched(env_id, len(seeds), tcfg.eval_episodes, seeds=[EVAL_SEED_OFFSET + s for s in seeds],
                                native=native, device=device, **env_kwargs)
    return agent, venv, eval_env


def _train_many_into(parent: Any, agent: Any, venv: Any, eval_env: Any, tcfg: TrainConfig, env_id: str,
                     run_dirs: list[Any], progress: bool, resume: dict[str, Any] | None = None):
    """Train in lockstep into ``parent`` (checkpoints, ``aggregate.json`` and its curve there)."""
    return train_many(agent, venv, tcfg.steps, env_id=env_id, eval_env=eval_env, eval_every=tcfg.eval_every,
                      eval_episodes=tcfg.eval_episodes, keep_best=tcfg.keep_best, run_dirs=run_dirs,
                      progress=progress, aggregate_dir=parent, checkpoint_every=tcfg.checkpoint_every,
                      resume=resume)


def resume_many(parent: Any, *, progress: bool = True):
    """Continue a ``--seeds`` run from the checkpoint in its folder, with the settings its seeds recorded."""
    import json
    from pathlib import Path

    from qlearn.agents import agent_classes
    from qlearn.config import from_dict
    from qlearn.envs import make_env
    from qlearn.training import checkpoint as ckpt

    parent = Path(parent)
    run_dirs = sorted((d for d in parent.glob("seed_*") if d.is_dir()), key=lambda d: int(d.name[5:]))
    if not run_dirs:
        raise QlearnError(f"{parent} holds no seed_* folders: not a --seeds run")
    try:
        config = json.loads((run_dirs[0] / "config.json").read_text())
        seeds = [int(x) for x in config["lockstep_seeds"]]
        agent_cls, cfg_cls = agent_classes(config["agent"])
        cfg = from_dict(cfg_cls, legacy_agent_config(config["agent"], config["agent_config"]))
        tcfg = from_dict(TrainConfig, {**config["train"], "seed": seeds[0]})
        env_id, env_kwargs = config["env_id"], dict(config.get("env_kwargs") or {})
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise QlearnError(f"{run_dirs[0] / 'config.json'} is not a readable --seeds run config ({exc})") from None
    if [int(d.name[5:]) for d in run_dirs] != seeds:
        raise QlearnError(f"{parent} should hold seed folders {seeds}, found {[d.name for d in run_dirs]}")
    finished = parent / "aggregate.json"
    if finished.is_file() and not json.loads(finished.read_text()).get("interrupted", False):
        raise QlearnError(f"run {parent} already finished ({tcfg.steps} steps)")
    payload = ckpt.load(parent / ckpt.FILENAME)
    step = int(payload["loop"]["step"])
    if step >= tcfg.steps:
        raise QlearnError(f"run {parent} already finished ({step} of {tcfg.steps} steps)")
    device = _resume_device(config.get("device"), parent)
    for d in run_dirs:
        for name in ("metrics.csv", "evals.csv"):
            _truncate_log(d / name, step)
    agent, venv, eval_env = _many_parts(agent_cls, make_env(env_id, **env_kwargs), cfg, tcfg, env_id, seeds,
                                        int(config.get("n_envs", 1)), bool(config.get("native", True)), device,
                                        env_kwargs)
    return _train_many_into(parent, agent, venv, eval_env, tcfg, env_id, run_dirs, progress, resume=payload)
