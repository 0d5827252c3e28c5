"""Defaults derived from the environment, for an env (or agent) that has no preset.

The dataclass defaults are one size for every problem: 50,000 steps whether the env has 16 states or
500. Where ``presets.json`` says nothing for an env and agent, :func:`derive` scales the step budget, the
exploration schedule, the learning-rate decay and the evaluation interval from what the env's spaces and
time limit say: the number of states ``S`` and actions ``A`` of a ``Discrete`` observation space (a run
must try each state-action pair many times), the time limit ``H`` (an episode's length), and the
observation's size for a ``Box``. Nothing here reads the env's model (``P``): the rules use what any
Gymnasium env declares.

The rules were designed on some environments and checked on others that played no part in designing
them (:data:`DESIGNED_ON`, :data:`CHECKED_ON`; the figures are in BENCHMARKS.md). Every derived value
comes with the rule and the facts it came from (:attr:`Derived.why`), shown by ``qlearn presets ENV``
and recorded in ``config.json`` under ``derived``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from gymnasium import spaces

from qlearn.config import DQNConfig
from qlearn.envs.make import make_env
from qlearn.envs.tabular import UNLIMITED_HORIZON
from qlearn.presets import default_envs, preset_entry

DESIGNED_ON = ("FrozenLake-v1 (4x4)", "Taxi-v4", "CliffWalking-v1", "random FrozenLake maps of sizes 5 and 6")
"""The environments the rules' constants were chosen on."""
CHECKED_ON = (
    "CliffWalkingSlippery-v1",
    "FrozenLake-v1 with FrozenLake8x8's map",
    "random FrozenLake maps of sizes 7 and 8",
)
"""Environments that played no part in choosing the constants, run only to check the rules."""

TABULAR_STEPS_PER_PAIR = 3_000
"""Tabular Q-learning: env steps per state-action pair."""
DQN_STEPS_PER_PAIR = 600
"""DQN on discrete observations: env steps per state-action pair (one-hot inputs generalise little; N envs
and a replay memory reuse each step more than tabular updates do)."""
DQN_ENVS = 32
"""DQN on discrete observations trains on this many envs per agent, one gradient step per step of all of
them: the shape of FrozenLake's ``batched`` recipe, the fastest reliable one measured."""
BOX_STEPS_PER_HORIZON = 200
"""DQN on vector observations: env steps per step of the time limit (200 episodes of full length)."""
MIN_STEPS, MAX_STEPS = 40_000, 1_000_000
"""Every derived step budget lies in this range (a stop rule, ``--until`` or ``--patience``, ends a run
that is done sooner)."""
EVALUATIONS = 50
"""Evaluations per run: ``eval_every`` is the budget over this."""


@dataclass(frozen=True)
class EnvFacts:
    """What the rules read from an env: ``states`` (``Discrete`` observations) or ``obs_dim`` (a ``Box``'s
    size), ``actions``, and ``horizon``: the time limit, None where the env has none."""

    actions: int
    states: int | None = None
    obs_dim: int | None = None
    horizon: int | None = None

    @classmethod
    def of(cls, env: Any) -> EnvFacts:
        obs, act = env.observation_space, env.action_space
        spec = getattr(env, "spec", None)
        horizon = spec.max_episode_steps if spec is not None else None
        states = int(obs.n) if isinstance(obs, spaces.Discrete) else None
        dim = int(spaces.flatdim(obs)) if states is None else None
        return cls(int(act.n), states, dim, int(horizon) if horizon else None)

    def describe(self) -> str:
        """E.g. ``500 states, 6 actions, time limit 200``."""
        obs = f"{self.states} states" if self.states is not None else f"observations of size {self.obs_dim}"
        limit = f"time limit {self.horizon}" if self.horizon else f"no time limit (evaluated over {self.eval_horizon})"
        return f"{obs}, {self.actions} actions, {limit}"

    @property
    def eval_horizon(self) -> int:
        """Steps an evaluation episode may last: the time limit, else :data:`UNLIMITED_HORIZON` (a greedy
        policy that cycles on an env without a time limit still ends)."""
        return self.horizon or UNLIMITED_HORIZON


@dataclass(frozen=True)
class Derived:
    """Settings derived for one agent kind: ``agent`` (its config's fields), ``train`` (TrainConfig's),
    ``envs`` per agent (None: the agent's usual), and ``why``: each setting's rule with its numbers."""

    facts: EnvFacts
    agent: dict[str, Any] = field(default_factory=dict)
    train: dict[str, Any] = field(default_factory=dict)
    envs: int | None = None
    why: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """What ``config.json`` records under ``derived``."""
        settings = {**self.agent, **self.train, **({"envs": self.envs} if self.envs else {})}
        return {"facts": asdict(self.facts), "settings": settings, "why": dict(self.why)}


def _budget(raw: float) -> int:
    """A step budget: ``raw`` rounded up to a thousand, within [MIN_STEPS, MAX_STEPS]."""
    return int(min(max(-(-int(raw) // 1000) * 1000, MIN_STEPS), MAX_STEPS))


_FACTS: dict[str, EnvFacts] = {}


def facts_of(env_id: str, env_kwargs: dict[str, Any] | None = None) -> EnvFacts:
    """:meth:`EnvFacts.of` the env built from ``env_id`` and ``env_kwargs`` (once per process for each)."""
    key = json.dumps([env_id, env_kwargs or {}], sort_keys=True, default=str)
    if key not in _FACTS:
        env = make_env(env_id, **(env_kwargs or {}))
        try:
            _FACTS[key] = EnvFacts.of(env)
        finally:
            env.close()
    return _FACTS[key]


def derived_settings(
    env_id: str, agent: str, env_kwargs: dict[str, Any] | None = None, n_envs: int | None = None
) -> Derived | None:
    """The derived settings for ``agent`` on this env, or None where its preset applies: the env's preset
    has settings for ``agent`` and was tuned for this env (a preset with ``_states`` was tuned for that many
    states: FrozenLake-v1's for the 4x4 map, not for a map given in ``env_kwargs``)."""
    entry = preset_entry(env_id)
    tuned = entry.get("_states")
    if agent in entry and (tuned is None or not env_kwargs):
        return None
    facts = facts_of(env_id, env_kwargs)
    if agent in entry and facts.states == tuned:
        return None
    return derive(facts, agent, n_envs)


def envs_per_agent(env_id: str, agent: str, recipe: str | None = None, env_kwargs: dict[str, Any] | None = None) -> int:
    """Envs per agent where ``--envs`` is not given: a recipe's or preset's (:func:`qlearn.presets.default_envs`),
    else the derived settings' where they ask for some."""
    if recipe is None:
        derived = derived_settings(env_id, agent, env_kwargs)
        if derived is not None and derived.envs:
            return derived.envs
    return default_envs(env_id, agent, recipe)


def derive(facts: EnvFacts, agent: str, n_envs: int | None = None) -> Derived:
    """The derived settings of ``agent`` (``dqn``, ``tabular`` or ``pqn``) for an env with ``facts``, with
    ``n_envs`` envs per agent (None: the rules' choice)."""
    if facts.states is not None:
        return _discrete(facts, agent, n_envs)
    return _vector(facts, agent)


def _discrete(facts: EnvFacts, agent: str, n_envs: int | None) -> Derived:
    s, a = facts.states or 1, facts.actions
    pairs = f"S x A = {s} x {a} = {s * a} state-action pairs"
    clip = f"within [{MIN_STEPS:,}, {MAX_STEPS:,}]"
    if agent == "tabular":
        steps = _budget(TABULAR_STEPS_PER_PAIR * s * a)
        why = {"steps": f"{TABULAR_STEPS_PER_PAIR:,} per pair x {pairs}, {clip}"}
        settings: dict[str, Any] = {"epsilon_decay_steps": steps // 2, "alpha_decay_steps": steps}
        why["epsilon_decay_steps"] = "half the steps (then epsilon_end)"
        why["alpha_decay_steps"] = "the steps (alpha decays to alpha_end by the end)"
        return Derived(facts, settings, _train(steps), None, {**why, **TRAIN_WHY})
    steps = _budget(DQN_STEPS_PER_PAIR * s * a)
    why = {"steps": f"{DQN_STEPS_PER_PAIR:,} per pair x {pairs}, {clip}"}
    if agent == "pqn":
        return Derived(facts, {}, _train(steps), None, {**why, **TRAIN_WHY})
    envs = n_envs or DQN_ENVS
    settings = {
        "lr": 3e-3, "lr_end": 1e-5, "lr_decay_steps": steps, "batch_size": 256, "train_freq": envs,
        "target_update_interval": 5, "learning_starts": 1000, "epsilon_decay_steps": max(1, steps * 3 // 8),
        "epsilon_end": 0.05, "buffer_size": min(steps, 100_000),
    }  # fmt: skip
    why.update(
        envs=f"{DQN_ENVS} envs per agent (FrozenLake's batched recipe: lr 3e-3 to 1e-5, batch 256, target copied "
        "every 5 gradient steps)",
        train_freq=f"the envs per agent ({envs}): one gradient step per step of all of them",
        lr_decay_steps="the steps",
        epsilon_decay_steps="3/8 of the steps",
        buffer_size="the steps, at most 100,000",
    )
    return Derived(facts, settings, _train(steps), envs, {**why, **TRAIN_WHY})


def _vector(facts: EnvFacts, agent: str) -> Derived:
    h = facts.eval_horizon
    steps = _budget(BOX_STEPS_PER_HORIZON * h)
    src = f"time limit {facts.horizon}" if facts.horizon else f"no time limit: a horizon of {h}"
    why = {"steps": f"{BOX_STEPS_PER_HORIZON} x the horizon ({src}), within [{MIN_STEPS:,}, {MAX_STEPS:,}]"}
    train = {**_train(steps), "eval_episodes": 20}
    why.update(TRAIN_WHY, eval_episodes="20 sampled episodes (no model to evaluate exactly)")
    if agent != "dqn":
        return Derived(facts, {}, train, None, why)
    settings = {"epsilon_decay_steps": steps // 5, "lr_end": DQNConfig.lr / 10, "lr_decay_steps": steps}
    why.update(epsilon_decay_steps="a fifth of the steps", lr_end="lr / 10 at the end", lr_decay_steps="the steps")
    return Derived(facts, settings, train, None, why)


def _train(steps: int) -> dict[str, Any]:
    return {"steps": steps, "eval_every": max(1, steps // EVALUATIONS)}


TRAIN_WHY = {"eval_every": f"the steps / {EVALUATIONS} ({EVALUATIONS} evaluations per run)"}
