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

TABULAR_STEPS_PER_PAIR = 80_000
"""Tabular Q-learning: env steps per state-action pair (FrozenLake 4x4's preset, 5M steps over its 64 pairs:
the rarest reachable pair still needs hundreds of visits)."""
TABULAR_STEPS = (1_000_000, 20_000_000)
"""The range of a derived tabular budget."""
TABULAR_ENVS = 256
"""Tabular Q-learning trains on this many envs per agent, every env's transition applied each step."""
TABULAR_ALPHA_X_ENVS = 10.24
"""alpha x envs per agent (FrozenLake 4x4's preset: 0.01 x 1024). A pair that k envs visit in one step moves
as k updates one after another would (:mod:`qlearn.agents.tabular`), about alpha x k of the way to its
target while that is small: this product keeps the often-visited pairs' steps small. Fewer envs at a larger
alpha give rare pairs larger steps, hence 256 envs rather than 1024."""
TABULAR_ALPHA_MAX = 0.1
"""The largest derived alpha (the course's starting value), for runs on few envs."""
DQN_STEPS_PER_PAIR = 4_700
"""DQN on discrete observations: env steps per state-action pair (FrozenLake 4x4's preset, 300k steps over
its 64 pairs)."""
DQN_STEPS = (100_000, 2_000_000)
"""The range of a derived DQN budget on discrete observations."""
DQN_ENVS = 128
"""DQN on discrete observations trains on this many envs per agent, one gradient step per step of all of
them: the shape of FrozenLake 4x4's preset."""
DQN_REUSE = 16
"""Samples per new transition: the batch is this many times the envs (FrozenLake's 2,048 for 128 envs), within
[64, 2048]."""
UNMODELLED_STEPS = 1_000_000
"""The largest derived budget on discrete observations where the env has no model (Blackjack-v1): Gymnasium
steps it in Python, some 10,000 steps a second on this machine's core, so 20M steps would take half an hour."""
EXPLORING = {"tabular": (0.6, 300), "dqn": (0.5, 20)}
"""(epsilon_end, share): epsilon decays from 1 to epsilon_end over the steps / share (at least 1,000 steps).
Exploration stays high: the rarest reachable pair's share of the steps is largest near epsilon 0.5-0.6, and
the final agent is greedy whatever epsilon trained it."""
BOX_STEPS_PER_HORIZON = 200
"""DQN on vector observations: env steps per step of the time limit (200 episodes of full length)."""
BOX_STEPS = (40_000, 1_000_000)
"""The range of a derived budget on vector observations (a stop rule, ``--until`` or ``--patience``, ends a run
that is done sooner)."""
EVALUATIONS = {"discrete": 10, "vector": 50}
"""Evaluations per run: ``eval_every`` is the budget over this. On discrete observations they only report
(the final agent is delivered); on vector observations they choose the kept agent."""


@dataclass(frozen=True)
class EnvFacts:
    """What the rules read from an env: ``states`` (``Discrete`` observations) or ``obs_dim`` (a ``Box``'s
    size), ``actions``, and ``horizon``: the time limit, None where the env has none."""

    actions: int
    states: int | None = None
    obs_dim: int | None = None
    horizon: int | None = None
    model: bool = False
    """Whether the env exposes its model (``P``): qlearn then steps it as a table, far faster than Gymnasium
    steps an env in Python."""

    @classmethod
    def of(cls, env: Any) -> EnvFacts:
        obs, act = env.observation_space, env.action_space
        spec = getattr(env, "spec", None)
        horizon = spec.max_episode_steps if spec is not None else None
        states = int(obs.n) if isinstance(obs, spaces.Discrete) else None
        dim = int(spaces.flatdim(obs)) if states is None else None
        model = states is not None and hasattr(env.unwrapped, "P")
        return cls(int(act.n), states, dim, int(horizon) if horizon else None, model)

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


def _budget(raw: float, limits: tuple[int, int]) -> int:
    """A step budget: ``raw`` rounded up to a thousand, within ``limits``."""
    return int(min(max(-(-int(raw) // 1000) * 1000, limits[0]), limits[1]))


def _limits(facts: EnvFacts, limits: tuple[int, int]) -> tuple[int, int]:
    """A budget's range on discrete observations: ``limits``, the top cut to :data:`UNMODELLED_STEPS` where the
    env has no model."""
    return limits if facts.model else (min(limits[0], UNMODELLED_STEPS), min(limits[1], UNMODELLED_STEPS))


def _within(limits: tuple[int, int], facts: EnvFacts | None = None) -> str:
    slow = " (no model: stepped by Gymnasium in Python)" if facts is not None and not facts.model else ""
    return f"within [{limits[0]:,}, {limits[1]:,}]{slow}"


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
    if agent == "tabular":
        limits = _limits(facts, TABULAR_STEPS)
        steps = _budget(TABULAR_STEPS_PER_PAIR * s * a, limits)
        why = {"steps": f"{TABULAR_STEPS_PER_PAIR:,} per pair x {pairs}, {_within(limits, facts)}"}
        envs = n_envs or TABULAR_ENVS
        alpha = min(TABULAR_ALPHA_MAX, TABULAR_ALPHA_X_ENVS / envs)
        settings: dict[str, Any] = {"alpha": alpha, "alpha_end": 0.0, "alpha_decay_steps": steps}
        why.update(
            envs=f"{TABULAR_ENVS} envs per agent",
            alpha=f"{TABULAR_ALPHA_X_ENVS} / the envs per agent ({envs}), at most {TABULAR_ALPHA_MAX}",
            alpha_decay_steps="the steps (alpha decays to 0 by the end)",
        )
        return _finish(facts, agent, steps, settings, envs, why)
    limits = _limits(facts, DQN_STEPS)
    steps = _budget(DQN_STEPS_PER_PAIR * s * a, limits)
    why = {"steps": f"{DQN_STEPS_PER_PAIR:,} per pair x {pairs}, {_within(limits, facts)}"}
    if agent == "pqn":
        return Derived(facts, {}, _train(steps, "discrete"), None, {**why, **_train_why("discrete")})
    envs = n_envs or DQN_ENVS
    batch = min(max(DQN_REUSE * envs, 64), 2048)
    settings = {
        "lr": 3e-3, "lr_end": 1e-5, "lr_decay_steps": steps, "batch_size": batch, "train_freq": envs,
        "target_update_interval": 5, "learning_starts": 1000, "buffer_size": steps,
    }  # fmt: skip
    why.update(
        envs=f"{DQN_ENVS} envs per agent (FrozenLake 4x4's preset: lr 3e-3 to 1e-5, target copied every 5 "
        "gradient steps)",
        train_freq=f"the envs per agent ({envs}): one gradient step per step of all of them",
        batch_size=f"{DQN_REUSE} x the envs per agent, within [64, 2,048]",
        lr_decay_steps="the steps",
        buffer_size="the steps (every transition kept)",
    )
    return _finish(facts, agent, steps, settings, envs, why)


def _finish(
    facts: EnvFacts, agent: str, steps: int, settings: dict[str, Any], envs: int, why: dict[str, str]
) -> Derived:
    """Add the exploration schedule and the delivery shared by both agents on discrete observations."""
    end, share = EXPLORING[agent]
    settings.update(epsilon_end=end, epsilon_decay_steps=max(1000, steps // share))
    why.update(
        epsilon_end=f"{end}: exploration stays high (the final agent acts greedily)",
        epsilon_decay_steps=f"the steps / {share}, at least 1,000",
        keep_best="false: the final agent is delivered (evaluations only report)",
    )
    train = {**_train(steps, "discrete"), "keep_best": False}
    return Derived(facts, settings, train, envs, {**why, **_train_why("discrete")})


def _vector(facts: EnvFacts, agent: str) -> Derived:
    h = facts.eval_horizon
    steps = _budget(BOX_STEPS_PER_HORIZON * h, BOX_STEPS)
    src = f"time limit {facts.horizon}" if facts.horizon else f"no time limit: a horizon of {h}"
    why = {"steps": f"{BOX_STEPS_PER_HORIZON} x the horizon ({src}), {_within(BOX_STEPS)}"}
    train = {**_train(steps, "vector"), "eval_episodes": 20}
    why.update(_train_why("vector"), eval_episodes="20 sampled episodes (no model to evaluate exactly)")
    if agent != "dqn":
        return Derived(facts, {}, train, None, why)
    settings = {"epsilon_decay_steps": steps // 5, "lr_end": DQNConfig.lr / 10, "lr_decay_steps": steps}
    why.update(epsilon_decay_steps="a fifth of the steps", lr_end="lr / 10 at the end", lr_decay_steps="the steps")
    return Derived(facts, settings, train, None, why)


def _train(steps: int, kind: str) -> dict[str, Any]:
    return {"steps": steps, "eval_every": max(1, steps // EVALUATIONS[kind])}


def _train_why(kind: str) -> dict[str, str]:
    return {"eval_every": f"the steps / {EVALUATIONS[kind]} ({EVALUATIONS[kind]} evaluations per run)"}
