"""``qlearn presets [ENV_ID]``: the tuned settings and named recipes stored per environment
(``src/qlearn/data/presets.json``)."""

from __future__ import annotations

import argparse
from typing import Any

from qlearn.cli.common import emit_json
from qlearn.errors import QlearnError, did_you_mean
from qlearn.presets import PQN_ENVS, all_presets, recipes


def add_parser(sub: Any) -> None:
    p = sub.add_parser("presets", help="show the tuned settings stored per environment")
    p.add_argument("env_id", nargs="?", metavar="ENV_ID")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Handler of ``qlearn presets``."""
    presets = all_presets()
    if args.env_id:
        if args.env_id not in presets:
            raise QlearnError(
                f"no preset for {args.env_id!r}{did_you_mean(args.env_id, presets)}; "
                f"presets exist for: {', '.join(presets)} (others use generic defaults)"
            )
        presets = {args.env_id: presets[args.env_id]}
    if args.json:
        emit_json(presets)
        return 0
    for env_id, entry in presets.items():
        print(env_id + (f"  ({entry['_source']})" if "_source" in entry else ""))
        for agent in ("dqn", "tabular", "pqn"):
            if agent in entry:
                settings = {**entry[agent], **entry.get("train", {}).get(agent, {})}
                envs = f"envs={entry.get('pqn_envs', PQN_ENVS)} " if agent == "pqn" else ""
                print(f"  {agent:8} {envs}" + " ".join(f"{k}={v}" for k, v in settings.items()))
                if f"_{agent}_source" in entry:
                    print(f"           ({entry[f'_{agent}_source']})")
        for name, recipe in recipes(env_id).items():
            print(f"  recipe {name} (--recipe {name}): {recipe.get('_doc', '')}")
            for agent in ("dqn", "tabular", "pqn"):
                if agent in recipe:
                    settings = {**recipe[agent], **recipe.get("train", {}).get(agent, {})}
                    envs = f"envs={recipe['envs']} " if "envs" in recipe else ""
                    print(f"    {agent:8} {envs}" + " ".join(f"{k}={v}" for k, v in settings.items()))
    return 0
