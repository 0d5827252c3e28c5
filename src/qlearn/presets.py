"""Tuned settings per environment, stored as data (``qlearn/data/presets.json``).

``qlearn train ENV`` starts from the preset for ``ENV`` (if there is one), then applies ``--set``.
Environments without a preset get defaults derived from their spaces and time limit (:mod:`qlearn.derived`).

A preset may hold named *recipes* (``qlearn train ENV --recipe NAME``): settings laid over the preset
for another way of training, e.g. ``batched``: many environments per agent and one gradient step per
step of all of them, the fast way to train many seeds at once. A recipe may fix the number of
environments per agent (``envs``).
"""

from __future__ import annotations

import fnmatch
import json
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from qlearn.errors import QlearnError, did_you_mean


@lru_cache(maxsize=1)
def all_presets() -> dict[str, Any]:
    text = resources.files("qlearn").joinpath("data/presets.json").read_text()
    return {k: v for k, v in json.loads(text).items() if not k.startswith("_")}


def preset(env_id: str, agent: str, recipe: str | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(agent_overrides, train_overrides)`` for ``env_id`` and agent kind (empty if none), with the named
    recipe's settings on top."""
    entry = {k: v for k, v in preset_entry(env_id).items() if not k.startswith("_")}
    agent_over = {k: tuple(v) if isinstance(v, list) else v for k, v in entry.get(agent, {}).items()}
    train_over = dict(entry.get("train", {}).get(agent, {}))
    if recipe is not None:
        r = get_recipe(env_id, recipe)
        if agent not in r:
            kinds = " or ".join(k for k in r if k in ("dqn", "tabular", "pqn"))
            raise QlearnError(f"recipe {recipe!r} of {env_id} is for --agent {kinds}, not {agent}")
        agent_over.update({k: tuple(v) if isinstance(v, list) else v for k, v in r[agent].items()})
        train_over.update(r.get("train", {}).get(agent, {}))
    return agent_over, train_over


def preset_entry(env_id: str) -> dict[str, Any]:
    """``env_id``'s entry: its own, else the first pattern (``ALE/*``) that matches it, else empty."""
    presets = all_presets()
    if env_id in presets:
        return presets[env_id]
    return next((v for k, v in presets.items() if "*" in k and fnmatch.fnmatchcase(env_id, k)), {})


RAINBOW_DOC = (
    "Rainbow (Hessel et al. 2018) from this env's DQN preset: C51 with 51 atoms on the env's range of returns, "
    "noisy layers (sigma0 0.5) in place of epsilon-greedy, dueling, Double DQN, 3-step returns, prioritized "
    "replay (alpha 0.5, beta 0.4 to 1 over the run's steps), Adam epsilon 1.5e-4. Rules from the preset, each the "
    "ratio of Rainbow's setting to Nature DQN's: learning rate (and its end) x 1/4 (6.25e-5 against 2.5e-4); "
    "warm-up x 0.4 (80K frames against 200K: prioritized replay can start sooner), at least one batch; target "
    "interval x 0.8 (32K frames against 10K agent steps = 40K frames); buffer x 1 (1M transitions in both); "
    "batch, gamma and steps as the preset's."
)
RAINBOW_SCALE = {"lr": 1 / 4, "lr_end": 1 / 4, "learning_starts": 0.4, "target_update_interval": 0.8, "buffer_size": 1}
"""Rainbow's settings over Nature DQN's, each the factor :func:`rainbow` applies to a preset's value."""


def rainbow(entry: dict[str, Any]) -> dict[str, Any] | None:
    """The ``rainbow`` recipe of a preset entry with DQN settings (None without them): fixed Rainbow parts,
    and the preset's values scaled by :data:`RAINBOW_SCALE`."""
    dqn = entry.get("dqn")
    if dqn is None:
        return None
    from qlearn.config import DQNConfig, TrainConfig

    steps = entry.get("train", {}).get("dqn", {}).get("steps", TrainConfig.steps)
    settings: dict[str, Any] = dict(
        distributional="c51", atoms=51, noisy=True, sigma0=0.5, dueling=True, double=True, n_step=3,
        prioritized=True, per_alpha=0.5, per_beta=0.4, per_beta_steps=steps, adam_eps=1.5e-4,
    )  # fmt: skip
    for key, factor in RAINBOW_SCALE.items():
        value = dqn.get(key, getattr(DQNConfig, key))
        if value is not None:
            settings[key] = value * factor if isinstance(value, float) else max(1, round(value * factor))
    batch = dqn.get("batch_size", DQNConfig.batch_size)
    settings["learning_starts"] = max(settings["learning_starts"], batch)
    return {"_doc": RAINBOW_DOC, "dqn": settings}


def recipes(env_id: str) -> dict[str, Any]:
    """The named recipes of ``env_id``'s preset (name -> settings); every preset with DQN settings has
    ``rainbow``, derived from them by :func:`rainbow`'s rules."""
    entry = preset_entry(env_id)
    out = dict(entry.get("recipes", {}))
    derived = rainbow(entry)
    if derived is not None and "rainbow" not in out:
        out["rainbow"] = derived
    return out


def get_recipe(env_id: str, name: str) -> dict[str, Any]:
    """One recipe, or a one-line error naming the recipes that exist. A name ending in ``.json`` is a recipe
    file (what ``qlearn sweep`` writes for its best trial), for the env it names."""
    if name.endswith(".json"):
        return recipe_file(env_id, name)
    known = recipes(env_id)
    if name not in known:
        have = f"recipes for {env_id}: {', '.join(known)}" if known else f"{env_id} has no recipes"
        raise QlearnError(f"unknown recipe {name!r}{did_you_mean(name, known)}; {have} (see qlearn presets)")
    return known[name]


def recipe_file(env_id: str, path: str) -> dict[str, Any]:
    """A recipe from a JSON file: ``{"env": ENV, "dqn": {...}, "train": {"dqn": {...}}, "envs": N}``."""
    p = Path(path)
    try:
        entry = json.loads(p.read_text())
    except FileNotFoundError:
        raise QlearnError(f"--recipe {path}: no such file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise QlearnError(f"--recipe {path}: not a JSON recipe file ({exc})") from None
    if not isinstance(entry, dict) or not isinstance(entry.get("train", {}), dict):
        raise QlearnError(f'--recipe {path}: expected an object with agent settings (e.g. {{"dqn": {{...}}}})')
    if entry.get("env", env_id) != env_id:
        raise QlearnError(f"--recipe {path} is for {entry['env']}, not {env_id}")
    return entry


PQN_ENVS = 16
"""Envs per PQN agent where neither ``--envs``, a recipe nor the preset (``pqn_envs``) says: PQN learns
from many envs at once, where DQN learns from a replay memory."""


def default_envs(env_id: str, agent: str, recipe: str | None = None) -> int:
    """Envs per agent when ``--envs`` is not given: the recipe's, else the preset's for the agent
    (``dqn_envs``, ``pqn_envs``), else :data:`PQN_ENVS` for PQN and 1 for the others."""
    wanted = recipe_envs(env_id, recipe)
    if wanted:
        return int(wanted)
    return int(preset_entry(env_id).get(f"{agent}_envs", PQN_ENVS if agent == "pqn" else 1))


def recipe_envs(env_id: str, name: str | None) -> int | None:
    """Environments per agent a recipe asks for (None: no recipe, or it leaves that open)."""
    return None if name is None else get_recipe(env_id, name).get("envs")


ONE_ENV_RECIPE = "course"
"""The recipe a preset shaped for many envs per agent keeps for one env (the course's per-step loop)."""


def one_env_recipe(env_id: str, agent: str) -> str | None:
    """The recipe for ``agent`` on one env where ``env_id``'s preset trains it on many (None: no such
    preset, or it has no :data:`ONE_ENV_RECIPE` for ``agent``)."""
    if default_envs(env_id, agent) == 1:
        return None
    recipe = recipes(env_id).get(ONE_ENV_RECIPE, {})
    return ONE_ENV_RECIPE if agent in recipe else None
