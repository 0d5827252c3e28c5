"""``qlearn presets [ENV_ID]``: the tuned settings and named recipes stored per environment
(``src/qlearn/data/presets.json``)."""

from __future__ import annotations

import argparse
from typing import Any

from qlearn.cli.common import emit_json
from qlearn.derived import CHECKED_ON, DESIGNED_ON, derived_settings
from qlearn.errors import QlearnError
from qlearn.presets import all_presets, default_envs, preset_entry, recipes


def add_parser(sub: Any) -> None:
    p = sub.add_parser("presets", help="show the tuned settings stored per environment")
    p.add_argument("env_id", nargs="?", metavar="ENV_ID")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Handler of ``qlearn presets``."""
    presets = all_presets()
    if args.env_id:
        if not preset_entry(args.env_id):
            return _derived(args)
        presets = {args.env_id: preset_entry(args.env_id)}
    if args.json:
        emit_json(presets)
        return 0
    for env_id, entry in presets.items():
        print(env_id + (f"  ({entry['_source']})" if "_source" in entry else ""))
        for agent in ("dqn", "tabular", "pqn"):
            if agent in entry:
                settings = {**entry[agent], **entry.get("train", {}).get(agent, {})}
                n = default_envs(env_id, agent)
                envs = f"envs={n} " if n != 1 else ""
                print(f"  {agent:8} {envs}" + " ".join(f"{k}={v}" for k, v in settings.items()))
                if f"_{agent}_source" in entry:
                    print(f"           ({entry[f'_{agent}_source']})")
            elif args.env_id and "*" not in env_id:  # one env asked for: what an agent without a preset gets
                derived = derived_settings(env_id, agent)
                if derived is not None and (derived.facts.states is not None or agent == "dqn"):
                    settings = derived.to_dict()["settings"]
                    print(f"  {agent:8} derived: " + " ".join(f"{k}={v}" for k, v in settings.items()))
        for name, recipe in recipes(env_id).items():
            print(f"  recipe {name} (--recipe {name}): {recipe.get('_doc', '')}")
            for agent in ("dqn", "tabular", "pqn"):
                if agent in recipe:
                    settings = {**recipe[agent], **recipe.get("train", {}).get(agent, {})}
                    envs = f"envs={recipe['envs']} " if "envs" in recipe else ""
                    print(f"    {agent:8} {envs}" + " ".join(f"{k}={v}" for k, v in settings.items()))
    return 0


def _derived(args: argparse.Namespace) -> int:
    """An env without a preset: the settings derived from its spaces and time limit, and from what."""
    try:
        per_agent = {a: derived_settings(args.env_id, a) for a in ("dqn", "tabular", "pqn")}
    except QlearnError as exc:
        raise QlearnError(f"{exc}; presets exist for: {', '.join(all_presets())}") from None
    if args.json:
        emit_json({args.env_id: {a: d.to_dict() for a, d in per_agent.items() if d is not None}})
        return 0
    facts = next(d.facts for d in per_agent.values() if d is not None)
    print(f"{args.env_id}: no preset; settings derived from its spaces and time limit ({facts.describe()})")
    for agent, d in per_agent.items():
        if d is None:
            continue
        settings = {**d.agent, **d.train}
        envs = f"envs={d.envs} " if d.envs else ""
        print(f"  {agent:8} {envs}" + " ".join(f"{k}={v}" for k, v in settings.items()))
        for key, why in d.why.items():
            print(f"           {key}: {why}")
    print(f"  (rules designed on {', '.join(DESIGNED_ON)}; checked on {', '.join(CHECKED_ON)})")
    return 0
