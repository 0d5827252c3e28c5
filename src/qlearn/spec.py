"""The run spec: everything that defines a run, typed and validated once; ``config.json`` is its ``to_dict``.

``RunSpec.build`` lays the env's preset, a recipe and ``--set`` overrides into validated configs; the
command line and the library (:func:`qlearn.training.runner.run`) both start from it, ``--config`` and
``--resume`` read it back with :meth:`RunSpec.from_dict`, with no round trip through ``--set`` strings.
A run of one seed alone (a Gymnasium env, K=1) and a ``--seeds`` group (batched envs, one folder per
seed) are one spec each: ``lockstep`` tells them apart, and each seed folder of a group records the
group's spec with its own seed.

Units: ``target_update_interval`` counts gradient steps, where SB3 and CleanRL count env steps. A
setting ported from them converts as ``qlearn = theirs * gradient_steps / train_freq`` (one env per
agent); with N envs per agent, ``train_freq`` is in env steps of one agent, as SB3's is per env.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from qlearn.config import (
    DQNConfig,
    PQNConfig,
    TabularConfig,
    TrainConfig,
    from_dict,
    parse_sets,
    to_dict,
    with_overrides,
)
from qlearn.derived import derived_settings
from qlearn.errors import QlearnError
from qlearn.presets import default_envs, one_env_recipe, preset

SPEC_VERSION = 2  # config.json written from a RunSpec (1: hand-built dicts, read as well)
AGENT_CONFIGS: dict[str, type[DQNConfig] | type[TabularConfig] | type[PQNConfig]] = {
    "dqn": DQNConfig,
    "tabular": TabularConfig,
    "pqn": PQNConfig,
}
AGENT_NAMES = ", ".join(AGENT_CONFIGS)


@dataclass(frozen=True)
class RunSpec:
    """A run: env and its kwargs, agent kind and config, training config, seeds, envs, device, recipe,
    pretraining table."""

    env_id: str
    agent: str = "dqn"
    agent_config: DQNConfig | TabularConfig | PQNConfig = field(default_factory=DQNConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    seeds: tuple[int, ...] = (0,)
    n_envs: int = 1
    lockstep: bool = False
    """Trained as a group on batched envs (``--seeds``, ``--envs``); else one agent on one Gymnasium env."""
    device: str = "cpu"
    recipe: str | None = None
    pretrain: str | None = None
    """A Q-table the network is fitted to before training (``course``, ``optimal`` or a file)."""
    native: bool = True
    """Native batched envs where they exist (else Gymnasium's vector envs)."""
    derived: dict[str, Any] | None = None
    """Where no preset applied: the settings derived from the env, the facts and rules they came from
    (:meth:`qlearn.derived.Derived.to_dict`); what ``--set`` gave over them wins and is in the configs."""

    def __post_init__(self) -> None:
        if not isinstance(self.env_id, str) or not self.env_id:
            raise QlearnError(f"env_id must be an environment id, got {self.env_id!r}")
        if self.agent not in AGENT_CONFIGS:
            raise QlearnError(f"unknown agent {self.agent!r}: use one of {AGENT_NAMES}")
        if not isinstance(self.agent_config, AGENT_CONFIGS[self.agent]):
            raise QlearnError(
                f"agent {self.agent} needs a {AGENT_CONFIGS[self.agent].__name__}, got "
                f"{type(self.agent_config).__name__}"
            )
        seeds = tuple(int(s) for s in self.seeds)
        if not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 0:
            raise QlearnError(f"seeds must be distinct, >= 0 and at least one, got {list(self.seeds)}")
        object.__setattr__(self, "seeds", seeds)
        if self.n_envs < 1:
            raise QlearnError(f"--envs must be >= 1, got {self.n_envs}")
        if not self.lockstep and (len(seeds) != 1 or self.n_envs != 1):
            raise QlearnError("a run of one agent on one env has one seed and --envs 1; more make a lockstep run")
        if self.pretrain is not None and (self.agent != "dqn" or self.lockstep):
            raise QlearnError("--pretrain fits one network: use it with --agent dqn and one seed (no --seeds/--envs)")
        if not isinstance(self.env_kwargs, dict):
            raise QlearnError(f"env_kwargs must be an object, got {self.env_kwargs!r}")
        if self.env_kwargs.get("vector") == "ale" and self.train.checkpoint_every:
            from qlearn.envs.ale_vector import NO_CHECKPOINT

            raise QlearnError(NO_CHECKPOINT)
        if self.train.seed != seeds[0]:
            object.__setattr__(self, "train", dataclasses.replace(self.train, seed=seeds[0]))

    # --------------------------------------------------------------- building
    @classmethod
    def build(
        cls,
        env_id: str,
        agent: str = "dqn",
        *,
        seed: int = 0,
        seeds: Sequence[int] | None = None,
        n_envs: int | None = None,
        lockstep: bool | None = None,
        steps: int | None = None,
        sets: Sequence[str] = (),
        env_kwargs: dict[str, Any] | None = None,
        recipe: str | None = None,
        pretrain: str | None = None,
        device: str = "cpu",
        native: bool = True,
    ) -> RunSpec:
        """The env's preset for ``agent`` (with ``recipe``'s settings over it), then ``sets`` (``key=value``);
        ``n_envs`` None: the recipe's, else the agent's default (:func:`qlearn.presets.default_envs`); one env
        where the preset's default is many: the preset's one-env recipe (:func:`qlearn.presets.one_env_recipe`)."""
        if agent not in AGENT_CONFIGS:
            raise QlearnError(f"unknown agent {agent!r}: use one of {AGENT_NAMES}")
        cfg_cls = AGENT_CONFIGS[agent]
        agent_sets, train_sets = parse_sets(list(sets), cfg_cls, TrainConfig)
        if n_envs == 1 and recipe is None:  # a preset shaped for many envs asked for one: its one-env recipe
            recipe = one_env_recipe(env_id, agent)
        derived = None if recipe is not None else derived_settings(env_id, agent, env_kwargs, n_envs)
        if derived is None:
            agent_preset, train_preset = preset(env_id, agent, recipe)
        else:
            agent_preset, train_preset = derived.agent, derived.train
        if steps is not None:
            train_sets["steps"] = steps
        ale_vector = (env_kwargs or {}).get("vector") == "ale"  # ale-py's vector env: a batch, never checkpointed
        if ale_vector:
            train_sets.setdefault("checkpoint_every", 0)
        seeds = tuple(seeds) if seeds is not None else (int(seed),)
        if n_envs is None:
            n_envs = derived.envs if derived is not None and derived.envs else default_envs(env_id, agent, recipe)
        if not seeds:
            raise QlearnError("seeds must be distinct, >= 0 and at least one, got []")
        return cls(
            env_id,
            agent,
            with_overrides(cfg_cls(), {**agent_preset, **agent_sets}),
            with_overrides(TrainConfig(), {**train_preset, **train_sets, "seed": seeds[0]}),
            dict(env_kwargs or {}),
            seeds,
            int(n_envs),
            lockstep if lockstep is not None else (len(seeds) > 1 or n_envs > 1 or ale_vector),
            device,
            recipe,
            pretrain,
            native,
            None if derived is None else derived.to_dict(),
        )

    def with_device(self, device: str) -> RunSpec:
        return dataclasses.replace(self, device=device)

    # -------------------------------------------------------------- the file
    def to_dict(self, seed: int | None = None) -> dict[str, Any]:
        """What ``config.json`` holds (for a group, ``seed``'s folder: the group's spec with that seed)."""
        s = self.seeds[0] if seed is None else int(seed)
        out: dict[str, Any] = {
            "spec_version": SPEC_VERSION,
            "env_id": self.env_id,
            "env_kwargs": dict(self.env_kwargs),
            "agent": self.agent,
            "agent_config": to_dict(self.agent_config),
            "train": {**to_dict(self.train), "seed": s},
            "pretrain": self.pretrain,
            "device": self.device,
            "recipe": self.recipe,
        }
        if self.lockstep:
            out.update({"n_envs": self.n_envs, "lockstep_seeds": list(self.seeds), "native": self.native})
        if self.derived is not None:
            out["derived"] = self.derived
        unused = self.agent_config.unused()
        if unused:
            out["unused_settings"] = unused
        return out

    def record(self, seed: int | None = None, **extra: Any) -> dict[str, Any]:
        """:meth:`to_dict` with what a run folder also notes: versions, time, the command, ``extra``."""
        from qlearn.runs import versions

        return {**self.to_dict(seed), **extra, "versions": versions(), "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}

    @classmethod
    def from_dict(cls, d: Any, where: str = "config.json") -> RunSpec:
        """Read back :meth:`to_dict` (or a ``config.json`` of an earlier qlearn), validated, with a one-line error
        naming ``where`` for anything that is not a run config."""
        if (
            not isinstance(d, dict)
            or not {"env_id", "agent", "agent_config", "train"} <= set(d)
            or not isinstance(d["env_id"], str)
            or not isinstance(d["agent"], str)
            or not isinstance(d["agent_config"], dict)
            or not isinstance(d["train"], dict)
            or not isinstance(d.get("env_kwargs") or {}, dict)
        ):
            raise QlearnError(
                f"{where} is not a qlearn run config (env_id and agent as text, agent_config, train and "
                "env_kwargs as objects are needed)"
            )
        if d["agent"] not in AGENT_CONFIGS:
            raise QlearnError(f"{where}: unknown agent {d['agent']!r}")
        pretrain = d.get("pretrain")
        if pretrain is not None and not isinstance(pretrain, str):
            raise QlearnError(f"{where}: pretrain must be a table name or path, got {pretrain!r}")
        agent_config = legacy_agent_config(d["agent"], d["agent_config"])
        try:
            cfg = from_dict(AGENT_CONFIGS[d["agent"]], agent_config)
            tcfg = from_dict(TrainConfig, d["train"])
            group = d.get("lockstep_seeds")
            seeds = tuple(int(s) for s in group) if group else (tcfg.seed,)
            return cls(
                d["env_id"],
                d["agent"],
                cfg,
                tcfg,
                dict(d.get("env_kwargs") or {}),
                seeds,
                int(d.get("n_envs", 1)),
                bool(group),
                str(d.get("device") or "cpu"),
                d.get("recipe"),
                pretrain,
                bool(d.get("native", True)),
                d["derived"] if isinstance(d.get("derived"), dict) else None,
            )
        except (TypeError, ValueError, KeyError) as exc:
            raise QlearnError(f"{where} holds settings this qlearn cannot read ({exc})") from None


def legacy_agent_config(agent_kind: str, agent_config: dict[str, Any]) -> dict[str, Any]:
    """A recorded DQN config from before the ``engine`` setting trained by autograd: keep it that way."""
    if agent_kind == "dqn" and isinstance(agent_config, dict) and "engine" not in agent_config:
        return {**agent_config, "engine": "torch"}
    return agent_config
