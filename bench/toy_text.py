"""Default `qlearn train` on every toy-text env with a model and on random FrozenLake maps, against the optimum.

For each env and agent: ``qlearn train ENV --agent A --seeds 5`` with the defaults (the preset where one
exists, else the settings qlearn derives from the env's spaces: ``qlearn/derived.py``), seeds 0-4 in
lockstep, then the exact expected return (within the time limit, from the env's ``P``) of each seed's
delivered greedy policy and of its final network's, against the optimum: the return of the greedy policy
of Q* at the agent's gamma. The best any policy can do within the limit (finite-horizon dynamic
programming) is reported beside it. A seed is "within 2%" when its return is at least the optimum less
0.02 |optimum| (above the optimum is better still: the greedy policy of Q* is not the best within a limit).

The delivered agent is what the defaults deliver: the final agent where they say ``keep_best=false``
(FrozenLake-v1's preset and every derived setting), else the keep-best choice made by greedy evaluation
episodes (the model only reports, ``select_by=episodes``); the final network is the last one. Both figures
are exact, from the model.

Random maps: ``generate_random_map(size, seed=s)`` slippery, sizes 5, 6, 7, 8, 8 for seeds 0-4, through
FrozenLake-v1 (its 100-step limit); ``FrozenLake-v1:8x8`` is FrozenLake8x8's map under FrozenLake-v1's id
(100 steps, not 200), which gets the derived settings where FrozenLake8x8-v1 gets its preset.

Run:  .venv/bin/python bench/toy_text.py [--envs Taxi-v4,map5s0] [--agents dqn,tabular] [--no-record]
Rows go to bench/results/toy_text.jsonl (``bench/record.py``); ``scripts/bench_tables.py`` makes the table.
"""

from __future__ import annotations

import argparse
import functools
import json
import tempfile
import time

import numpy as np
import record  # bench/ is on the path when run as a script
from gymnasium.envs.toy_text.frozen_lake import generate_random_map

from qlearn.derived import CHECKED_ON, DESIGNED_ON
from qlearn.envs import TabularMDP, make_env, value_iteration
from qlearn.envs.tabular import best_return_within, greedy_policy, policy_returns
from qlearn.evaluation import evaluate
from qlearn.spec import RunSpec
from qlearn.threads import configure_threads
from qlearn.training.runner import run

MAPS = {f"map{min(5 + s, 8)}s{s}": (min(5 + s, 8), s) for s in range(5)}
ENVS = ["FrozenLake-v1", "FrozenLake8x8-v1", "FrozenLake-v1:8x8", "CliffWalking-v1", "CliffWalkingSlippery-v1",
        "Taxi-v4", *MAPS, "Blackjack-v1"]


def env_of(name: str) -> tuple[str, dict]:
    """(env id, env kwargs) of a table row's name: a registered id, or ``mapNsS`` (a random map)."""
    if name in MAPS:
        size, seed = MAPS[name]
        return "FrozenLake-v1", {"desc": generate_random_map(size, seed=seed)}
    if name == "FrozenLake-v1:8x8":  # FrozenLake8x8's map under FrozenLake-v1's id: not the preset's 16 states
        return "FrozenLake-v1", {"map_name": "8x8"}
    return name, {}


def role(name: str) -> str:
    env_id, kwargs = env_of(name)
    if "desc" in kwargs:
        return "designed on" if MAPS[name][0] <= 6 else "checked on"
    if kwargs:
        return "checked on"
    if env_id == "FrozenLake8x8-v1":  # its map is FrozenLake-v1:8x8's, a check env
        return "checked on"
    return "designed on" if any(d.startswith(env_id) for d in DESIGNED_ON) else "checked on"


def one(name: str, agent: str, seeds: list[int]) -> dict:
    env_id, kwargs = env_of(name)
    t = time.perf_counter()
    spec = RunSpec.build(env_id, agent, seeds=seeds, env_kwargs=kwargs, lockstep=True)
    res = run(spec, out=tempfile.mkdtemp(prefix="qlearn-bench-"), progress=False)
    wall = time.perf_counter() - t
    mdp = TabularMDP.from_env(make_env(env_id, **kwargs))
    q_star, _ = value_iteration(mdp, spec.agent_config.gamma)
    optimum = float(policy_returns(mdp, greedy_policy(q_star)[None])[0])
    final = [float(x) for x in res.eval_exact[-1]]  # exact, from the model (reported, not choosing)
    delivered = [float(x) for x in res.delivered_exact]
    q_error = [float(x) for x in res.delivered_q_error]
    floor = optimum - 0.02 * abs(optimum)
    within, final_within = [d >= floor for d in delivered], [f >= floor for f in final]
    return {"env": name, "env_id": env_id, "env_kwargs": kwargs, "agent": agent, "seeds": seeds,
            "role": role(name), "derived": spec.derived is not None, "steps": spec.train.steps,
            "n_envs": spec.n_envs, "optimum": optimum, "best_within_limit": best_return_within(mdp),
            "selected_by": res.selected_by, "delivered": delivered, "final": final, "q_error": q_error,
            "within_2pct": sum(within), "final_within_2pct": sum(final_within),
            "wall_s": wall}


# ----------------------------------------------------------------------------- Blackjack (no model)
CARDS = [(c, 4 / 13 if c == 10 else 1 / 13) for c in range(1, 11)]  # Gymnasium's infinite deck


def _soft(hard: int, ace: bool) -> int:
    return hard + 10 if ace and hard + 10 <= 21 else hard


@functools.lru_cache(None)
def _dealer(hard: int, ace: bool) -> tuple[tuple[int, float], ...]:
    """The dealer's final score (0: bust) and its probability, drawing while below 17 (Gymnasium's rule)."""
    if hard > 21:
        return ((0, 1.0),)
    if _soft(hard, ace) >= 17:
        return ((_soft(hard, ace), 1.0),)
    out: dict[int, float] = {}
    for c, p in CARDS:
        for k, q in _dealer(hard + c, ace or c == 1):
            out[k] = out.get(k, 0.0) + p * q
    return tuple(out.items())


@functools.lru_cache(None)
def _value(hard: int, ace: bool, shown: int) -> tuple[float, int]:
    """(optimal expected return, best action: 0 stick, 1 hit) of a player's hand against the dealer's card."""
    if hard > 21:
        return -1.0, 0
    me = _soft(hard, ace)
    stick = sum(p * q * np.sign(me - k) for c, p in CARDS for k, q in _dealer(shown + c, shown == 1 or c == 1))
    hit = sum(p * _value(hard + c, ace or c == 1, shown)[0] for c, p in CARDS)
    return (float(stick), 0) if stick >= hit else (float(hit), 1)


def blackjack_optimum() -> float:
    """The optimal policy's expected return in Blackjack-v1 (natural=False, sab=False), by dynamic
    programming over the infinite deck: the computed reference."""
    hands = ((c1, p1, c2, p2, d, pd) for c1, p1 in CARDS for c2, p2 in CARDS for d, pd in CARDS)
    return float(sum(p1 * p2 * pd * _value(c1 + c2, 1 in (c1, c2), d)[0] for c1, p1, c2, p2, d, pd in hands))


class BlackjackOptimal:
    """The dynamic-programming policy as an agent, to check the reference on the env itself."""

    def act(self, obs, greedy=True):
        total, shown, usable = (int(v) for v in np.unravel_index(int(np.asarray(obs).item()), (32, 11, 2)))
        return np.array([[_value(total - 10 if usable else total, bool(usable), shown)[1]]])


def blackjack(agent: str, seeds: list[int], episodes: int) -> dict:
    """Default training, then each delivered agent's greedy mean return over ``episodes`` games (95% CI)."""
    t = time.perf_counter()
    spec = RunSpec.build("Blackjack-v1", agent, seeds=seeds, lockstep=True)
    res = run(spec, out=tempfile.mkdtemp(prefix="qlearn-bench-"), progress=False)
    wall = time.perf_counter() - t
    env = make_env("Blackjack-v1")

    def score(a, seed: int) -> dict:
        env.reset(seed=seed)  # seeded once: a reseed per game (seed + i) skewed the returns here
        r = evaluate(a, env, episodes=episodes, seed=None)
        return {"mean": r.mean_return, "ci95": list(r.ci95)}

    delivered = [score(res.agent.select(k), 20_000 + k) for k in range(len(seeds))]
    return {"env": "Blackjack-v1", "agent": agent, "seeds": seeds, "derived": spec.derived is not None,
            "steps": spec.train.steps, "n_envs": spec.n_envs, "episodes": episodes, "optimum": blackjack_optimum(),
            "optimal_policy": score(BlackjackOptimal(), 30_000), "delivered": delivered, "wall_s": wall}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--envs", default=",".join(ENVS))
    ap.add_argument("--agents", default="dqn,tabular")
    ap.add_argument("--seeds", default="0,1,2,3,4")
    ap.add_argument("--episodes", type=int, default=20_000, help="games per Blackjack agent (no model)")
    record.add_arguments(ap)
    args = ap.parse_args()
    configure_threads(1)
    write = record.recorder("toy_text", args)
    seeds = [int(s) for s in args.seeds.split(",")]
    print(f"stamp: {json.dumps(record.stamp())}\nrules designed on {DESIGNED_ON}; checked on {CHECKED_ON}", flush=True)
    for name in args.envs.split(","):
        for agent in args.agents.split(","):
            if name == "Blackjack-v1":
                row = blackjack(agent, seeds, args.episodes)
                print(json.dumps(row), flush=True)
                write([row])
                continue
            row = one(name, agent, seeds)
            print(json.dumps({k: row[k] for k in ("env", "agent", "optimum", "delivered", "final", "within_2pct",
                                                   "final_within_2pct", "wall_s")}), flush=True)
            write([row])
    record.show("toy_text", "toy_text_blackjack", args=args)


if __name__ == "__main__":
    main()
