"""Tuned settings per environment, stored as data (``qlearn/data/presets.json``).

``qlearn train ENV`` starts from the preset for ``ENV`` (if there is one), then applies ``--set``.
Environments without a preset get the dataclass defaults.
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from typing import Any


@lru_cache(maxsize=1)
def all_presets() -> dict[str, Any]:
    text = resources.files("qlearn").joinpath("data/presets.json").read_text()
    return {k: v for k, v in json.loads(text).items() if not k.startswith("_")}


def preset(env_id: str, agent: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(agent_overrides, train_overrides)`` for ``env_id`` and agent kind (empty if none)."""
    entry = {k: v for k, v in all_presets().get(env_id, {}).items() if not k.startswith("_")}
    agent_over = {k: tuple(v) if isinstance(v, list) else v for k, v in entry.get(agent, {}).items()}
    return agent_over, dict(entry.get("train", {}).get(agent, {}))
