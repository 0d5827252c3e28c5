"""From a run spec to a saved run, and back: ``run(spec)``, ``resume(path)``, as ``qlearn train`` does.

The command line's ``qlearn train`` and the benchmarks both go through :func:`run`, so a benchmark
measures exactly what a user gets. A spec of one seed alone trains one agent on one Gymnasium env; a
lockstep spec trains K agents on K x N batched envs, a folder per seed beside ``aggregate.json``. Both
are one :class:`~qlearn.training.trainer.Trainer`. Everything is validated before the run folder is
created, so a mistake leaves nothing behind.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from qlearn.agents import agent_classes
from qlearn.derived import EnvFacts
from qlearn.envs import make_env
from qlearn.envs.pixels import protocol_of
from qlearn.envs.vector import make_batched
from qlearn.errors import QlearnError
from qlearn.runs import new_run_dir, read_run, write_json
from qlearn.spec import RunSpec, legacy_agent_config  # noqa: F401 - legacy_agent_config: part of this API
from qlearn.threads import configure_threads
from qlearn.training import checkpoint as ckpt
from qlearn.training.result import TrainResult
from qlearn.training.scoring import EVAL_SEED_OFFSET
from qlearn.training.stopping import stop_hooks
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
    too_big = QlearnError("the settings ask for more memory than this machine has (check buffer_size, hidden, bins)")
    try:
        return agent_cls.for_env(env, cfg, **kwargs)
    except (MemoryError, OverflowError):
        raise too_big from None
    except ValueError as exc:
        if "too big" in str(exc) or "maximum supported" in str(exc):
            raise too_big from None
        raise
    except RuntimeError as exc:
        if "alloc" in str(exc).lower() or "memory" in str(exc).lower():
            raise too_big from None
        raise


# ------------------------------------------------------------------------- run
def run(
    spec: RunSpec, *, out: str = "runs", progress: bool = True, command: str | None = None, hooks: Sequence[Any] = ()
) -> TrainResult:
    """Train what ``spec`` describes into a new run folder under ``out``; the result. ``hooks``: the trainer's
    hooks (``on_eval(row)``, ``on_episode(row)``) beside the spec's stop rules, e.g. a sweep's reporter."""
    check_out(out)
    spec = spec.with_device(pick_device(spec.device))
    agent, env, venv, eval_env = _parts(spec)
    table = None
    if spec.pretrain:
        from qlearn.reference import load_reference

        table, table_name = load_reference(spec.pretrain, env, spec.agent_config.gamma)
    say_unused(spec.agent_config.unused())
    if spec.derived is not None:
        facts = EnvFacts(**spec.derived["facts"]).describe()
        print(
            f"note: no preset for {spec.env_id} (--agent {spec.agent}): settings derived from its {facts} "
            f"(qlearn presets {spec.env_id} shows them and their rules)",
            file=sys.stderr,
        )
    if spec.env_kwargs.get("vector") == "ale":
        print("note: vector=ale: ale-py's vector env cannot save its games, so this run writes no checkpoints "
              "(--resume needs vector=gymnasium)", file=sys.stderr)  # fmt: skip
    threads = configure_threads()
    extra: dict[str, Any] = {"torch_threads": threads, "command": command}
    if protocol_of(env) is not None:  # how a pixel game is played and scored (qlearn.envs.pixels)
        extra["protocol"] = protocol_of(env)
    if not spec.lockstep:
        run_dir = new_run_dir(out, spec.env_id, spec.agent, spec.seeds[0])
        write_json(run_dir / "config.json", spec.record(**extra))
        if table is not None:
            from qlearn.agents.pretrain import pretrain as fit

            print(f"pretrained on {table_name}: mse {fit(agent, table):.2e}", file=sys.stderr)
        return _train_one(spec, agent, env, run_dir, progress, hooks=hooks)
    first, last = spec.seeds[0], spec.seeds[-1]
    parent = new_run_dir(out, spec.env_id, spec.agent, f"seeds{first}-{last}" if last != first else first)
    run_dirs = []
    for s in spec.seeds:
        d = parent / f"seed_{s}"
        d.mkdir()
        write_json(d / "config.json", spec.record(s, batched_env=type(venv).__name__, **extra))
        run_dirs.append(d)
    return _train_group(spec, agent, venv, eval_env, parent, run_dirs, progress, hooks=hooks)


def say_unused(unused: dict[str, str]) -> None:
    """One stderr line per reason that leaves settings unused (also in ``config.json``)."""
    by_reason: dict[str, list[str]] = {}
    for name, why in unused.items():
        by_reason.setdefault(why, []).append(name)
    for why, names in by_reason.items():
        print(f"note: {why}; unused: {', '.join(names)}", file=sys.stderr)


def _parts(spec: RunSpec) -> tuple[Any, Any, Any, Any]:
    """The agent (K stacked), its env, and for a group its K x N envs and sampled-scoring envs."""
    agent_cls, _ = agent_classes(spec.agent)
    env = make_env(spec.env_id, **spec.env_kwargs)
    if not spec.lockstep:
        return build_agent(agent_cls, env, spec.agent_config, seed=spec.seeds[0], device=spec.device), env, None, None
    seeds = list(spec.seeds)
    agent = build_agent(agent_cls, env, spec.agent_config, seeds=seeds, device=spec.device)
    venv = make_batched(
        spec.env_id, len(seeds), spec.n_envs, seeds=seeds, native=spec.native, device=spec.device, **spec.env_kwargs
    )
    eval_env = None
    if not hasattr(env.unwrapped, "P") or spec.train.select_by == "episodes":
        eval_env = make_batched(
            spec.env_id,
            len(seeds),
            spec.train.eval_episodes,
            seeds=[EVAL_SEED_OFFSET + s for s in seeds],
            native=spec.native,
            device=spec.device,
            **spec.env_kwargs,
        )
    return agent, env, venv, eval_env


def _train_one(
    spec: RunSpec,
    agent: Any,
    env: Any,
    run_dir: Path,
    progress: bool,
    resume: dict[str, Any] | None = None,
    hooks: Sequence[Any] = (),
) -> TrainResult:
    t = spec.train
    return train(
        agent,
        env,
        t.steps,
        seed=spec.seeds[0],
        run_dir=run_dir,
        eval_every=t.eval_every,
        eval_episodes=t.eval_episodes,
        keep_best=t.keep_best,
        callbacks=[*stop_hooks(t.until, t.patience), *hooks],
        progress=progress,
        checkpoint_every=t.checkpoint_every,
        resume=resume,
        select_by=t.select_by,
    )


def _train_group(
    spec: RunSpec,
    agent: Any,
    venv: Any,
    eval_env: Any,
    parent: Path,
    run_dirs: list[Path],
    progress: bool,
    resume: dict[str, Any] | None = None,
    hooks: Sequence[Any] = (),
) -> TrainResult:
    t = spec.train
    return train_many(
        agent,
        venv,
        t.steps,
        env_id=spec.env_id,
        eval_env=eval_env,
        eval_every=t.eval_every,
        eval_episodes=t.eval_episodes,
        keep_best=t.keep_best,
        run_dirs=run_dirs,
        progress=progress,
        aggregate_dir=parent,
        checkpoint_every=t.checkpoint_every,
        resume=resume,
        hooks=[*stop_hooks(t.until, t.patience), *hooks],
        select_by=t.select_by,
    )


# ---------------------------------------------------------------- the CLI's calls
def run_experiment(
    env_id: str,
    agent_kind: str = "dqn",
    *,
    seed: int = 0,
    steps: int | None = None,
    sets: Sequence[str] = (),
    env_kwargs: dict[str, Any] | None = None,
    out: str = "runs",
    pretrain: str | None = None,
    progress: bool = True,
    command: str | None = None,
    device: str = "cpu",
    recipe: str | None = None,
) -> TrainResult:
    """One seed alone: the env's preset for ``agent_kind`` (and ``recipe``), then ``sets`` (``key=value``)."""
    spec = RunSpec.build(
        env_id,
        agent_kind,
        seed=seed,
        steps=steps,
        sets=sets,
        env_kwargs=env_kwargs,
        recipe=recipe,
        pretrain=pretrain,
        device=device,
        n_envs=1,
        lockstep=False,
    )
    return run(spec, out=out, progress=progress, command=command)


def run_many(
    env_id: str,
    agent_kind: str = "dqn",
    *,
    seeds: Sequence[int],
    n_envs: int | None = 1,
    steps: int | None = None,
    sets: Sequence[str] = (),
    env_kwargs: dict[str, Any] | None = None,
    out: str = "runs",
    progress: bool = True,
    command: str | None = None,
    native: bool = True,
    device: str = "cpu",
    recipe: str | None = None,
) -> TrainResult:
    """One agent per seed in lockstep (one process): ``OUT/ENV__AGENT__seedsA-B__TIME/seed_S/`` (each a
    complete run folder) beside ``aggregate.json`` (final scores: mean, bootstrap 95% CI, IQM; the curve).
    ``n_envs`` per agent (None: the recipe's or preset's, as ``qlearn train`` without ``--envs``)."""
    spec = RunSpec.build(
        env_id,
        agent_kind,
        seeds=[int(s) for s in seeds],
        n_envs=n_envs,
        steps=steps,
        sets=sets,
        env_kwargs=env_kwargs,
        recipe=recipe,
        device=device,
        native=native,
        lockstep=True,
    )
    return run(spec, out=out, progress=progress, command=command)


def rerun_from_config(path: str, *, out: str = "runs", progress: bool = True, device: str | None = None) -> TrainResult:
    """Run again exactly what a run folder's ``config.json`` describes (a seed's folder of a ``--seeds`` run:
    the whole group), into a new run folder. ``device`` overrides the recorded one."""
    spec, p = read_spec(path)
    if device is None and spec.device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise QlearnError(
                f"{p} was recorded on {spec.device} and this machine has no CUDA: add --device cpu to "
                "rerun it on the CPU (its numbers will differ from the recorded run's)"
            )
    if device is not None:
        spec = spec.with_device(device)
    return run(spec, out=out, progress=progress, command=f"qlearn train --config {path}")


def read_spec(path: str | Path) -> tuple[RunSpec, Path]:
    """The spec a ``config.json`` (or the run folder holding one) records, refused when a newer qlearn wrote it."""
    from qlearn.version import __version__

    p = Path(path)
    if p.is_dir():
        p = p / "config.json"
    if not p.is_file():
        raise QlearnError(f"no config file at {p}")
    try:
        cfg = json.loads(p.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
        raise QlearnError(f"{p} is not valid JSON") from None
    written_by = cfg.get("versions", {}) if isinstance(cfg, dict) else {}
    if not isinstance(written_by, dict):
        raise QlearnError(f"{p} is not a qlearn run config (versions must be an object)")
    by = str(written_by.get("qlearn", "0"))
    if _version_tuple(by) > _version_tuple(__version__):
        raise QlearnError(f"{p} was written by qlearn {by}, newer than this qlearn {__version__}; upgrade")
    return RunSpec.from_dict(cfg, str(p)), p


def _version_tuple(v: str) -> tuple[int, ...]:
    parts = []
    for piece in v.split(".")[:3]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts)


# ---------------------------------------------------------------------- resume
def resume(run_dir: str | Path, *, progress: bool = True) -> TrainResult:
    """Continue a run (a lone run's folder, a ``--seeds`` parent or one of its seed folders) from its last
    checkpoint, with the settings its ``config.json`` records. Log rows the stopped process wrote after
    that checkpoint are dropped first, so the finished run's files read as if it had never stopped."""
    path = Path(run_dir)
    if list(path.glob("seed_*")) and not (path / "config.json").exists():
        return _resume_group(path, progress)
    info = read_run(path)
    if info.config.get("lockstep_seeds"):
        return _resume_group(info.path.parent, progress)
    spec, payload = _continue(read_spec(info.path)[0], info.path, [info.path])
    agent, env, _, _ = _parts(spec)
    return _train_one(spec, agent, env, info.path, progress, resume=payload)


resume_experiment = resume  # the name the CLI calls


def _resume_group(parent: Path, progress: bool) -> TrainResult:
    """Continue a ``--seeds`` run from the checkpoint in its folder, with the settings its seeds recorded."""
    run_dirs = sorted((d for d in parent.glob("seed_*") if d.is_dir()), key=lambda d: int(d.name[5:]))
    if not run_dirs:
        raise QlearnError(f"{parent} holds no seed_* folders: not a --seeds run")
    try:
        spec, _ = read_spec(run_dirs[0])
    except OSError as exc:
        raise QlearnError(f"{run_dirs[0] / 'config.json'} is not a readable --seeds run config ({exc})") from None
    if [int(d.name[5:]) for d in run_dirs] != list(spec.seeds):
        raise QlearnError(f"{parent} should hold seed folders {list(spec.seeds)}, found {[d.name for d in run_dirs]}")
    finished = parent / "aggregate.json"
    if finished.is_file() and not json.loads(finished.read_text()).get("interrupted", False):
        raise QlearnError(f"run {parent} already finished ({spec.train.steps} steps)")
    spec, payload = _continue(spec, parent, run_dirs)
    agent, _, venv, eval_env = _parts(spec)
    return _train_group(spec, agent, venv, eval_env, parent, run_dirs, progress, resume=payload)


def _continue(spec: RunSpec, folder: Path, run_dirs: list[Path]) -> tuple[RunSpec, dict[str, Any]]:
    """The checkpoint in ``folder``, checked unfinished; the spec on its recorded device; each run folder's
    CSV logs cut back to the checkpoint's step."""
    payload = ckpt.load(folder / ckpt.FILENAME)
    step = int(payload["loop"]["step"])
    if step >= spec.train.steps:
        raise QlearnError(f"run {folder} already finished ({step} of {spec.train.steps} steps)")
    spec = spec.with_device(_resume_device(spec.device, folder))
    for d in run_dirs:
        for name in ("metrics.csv", "evals.csv"):
            _truncate_log(d / name, step)
    return spec, payload


def _resume_device(recorded: str, where: Any) -> str:
    """The device a run recorded: where it must resume, since its checkpoint holds that device's random state."""
    import torch

    if recorded.startswith("cuda") and not torch.cuda.is_available():
        raise QlearnError(
            f"run {where} was trained on {recorded} and its checkpoint holds that device's random "
            "state: resume it on a machine with CUDA (or start it again there with --config)"
        )
    return pick_device(recorded)


def _truncate_log(path: Path, step: int) -> None:
    """Keep the header and the rows up to ``step`` of a CSV log."""
    if not path.is_file():
        return
    lines = path.read_text().splitlines(keepends=True)
    keep = lines[:1] + [ln for ln in lines[1:] if ln.strip() and int(float(ln.split(",", 1)[0])) <= step]
    path.write_text("".join(keep))
