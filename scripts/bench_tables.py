"""BENCHMARKS.md's tables, generated from the benchmark rows in bench/results/*.jsonl.

Every table in BENCHMARKS.md sits between ``<!-- table:NAME -->`` and ``<!-- /table:NAME -->``; this
script rewrites what is between the markers and keeps everything else (the prose) as it is. A table
shows, for each case it covers (an env, seed and library; a K; a setting...), the newest row in the
data, and under it the commit, date, machine and versions of those rows (a "rows from" column appears
when they come from more than one commit).

    .venv/bin/python scripts/bench_tables.py            # rewrite BENCHMARKS.md
    .venv/bin/python scripts/bench_tables.py --check    # exit 1 if BENCHMARKS.md is not what the data gives
    .venv/bin/python scripts/bench_tables.py --list     # the table names

Standard library only (the data are JSON lines; the bootstrap below uses a seeded ``random.Random``).
"""

from __future__ import annotations

import argparse
import json
import math
import random
import re
import statistics
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
import record  # noqa: E402

U = "unrecorded"
INF = float("inf")
MARK = re.compile(r"(<!-- table:(?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- /table:(?P=name) -->)", re.S)
THRESHOLD = {"CartPole-v1": 475.0, "MountainCar-v0": -110.0, "Acrobot-v1": -100.0}


# --------------------------------------------------------------------------------------------- data
def load(results: Path) -> dict[str, list[dict]]:
    return {p.stem: record.read(p.stem, p) for p in sorted(results.glob("*.jsonl"))}


def newest(rows: Iterable[dict], key: Callable[[dict], object], where: Callable[[dict], bool] = lambda r: True) -> dict:
    """key -> the last row (in append order) with that key."""
    out: dict = {}
    for r in rows:
        if where(r):
            out[key(r)] = r
    return out


# --------------------------------------------------------------------------------------- formatting
def short(commit: str) -> str:
    return commit[:7] if re.fullmatch(r"[0-9a-f]{40}", commit or "") else str(commit)


def num(x, digits: int = 1) -> str:
    if x is None:
        return ""
    if isinstance(x, float) and math.isinf(x):
        return "never"
    return f"{x:,.{digits}f}"


def ratio(a, b, digits: int = 1) -> str:
    """a / b as '3.4x' ('n/a' where either is missing or infinite)."""
    if a is None or b is None or b == 0 or math.isinf(a) or math.isinf(b):
        return "n/a"
    return f"{a / b:.{digits}f}x"


def median(xs: list[float | None]) -> float:
    """Median with runs that never reached counted as infinite."""
    return statistics.median([INF if x is None else x for x in xs])


def seed_span(seeds: list[int]) -> str:
    seeds = sorted(seeds)
    if seeds and seeds == list(range(seeds[0], seeds[-1] + 1)) and len(seeds) > 2:
        return f"{seeds[0]}-{seeds[-1]}"
    return ", ".join(map(str, seeds))


def machine_text(m: dict) -> str:
    parts = []
    if m.get("gpu") not in (None, U):
        parts.append(str(m["gpu"]))
    parts.append(f"{m.get('cpu', U)} CPU" if m.get("cpu") != U else "CPU model unrecorded")
    parts.append(f"{m.get('cores', U)} cores")
    if m.get("platform") not in (None, U):
        parts.append(str(m["platform"]))
    if m.get("hostname") not in (None, U):
        parts.append(f"host {m['hostname']}")
    return ", ".join(parts)


NAMES = {"python": "Python", "stable_baselines3": "SB3", "sb3_contrib": "sb3-contrib"}


def versions_text(v: dict) -> str:
    return ", ".join(f"{NAMES.get(k, k)} {x}" for k, x in v.items() if x is not None)


class Table:
    """A Markdown table whose every row knows the data rows it was computed from."""

    def __init__(self, *header: str) -> None:
        self.header, self.body = list(header), []

    def row(self, cells: Iterable, sources: Iterable[dict]) -> None:
        self.body.append(([str(c) for c in cells], list(sources)))

    def render(self) -> list[str]:
        sources = [s for _, src in self.body for s in src]
        commits = sorted({s["commit"] for s in sources}, key=lambda c: min(s["date"] for s in sources if s["commit"] == c))
        multi = len(commits) > 1
        header = self.header + (["rows from"] if multi else [])
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for cells, src in self.body:
            if multi:
                cells = cells + [", ".join(f"`{short(c)}`" for c in commits if any(s["commit"] == c for s in src))]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
        where: dict[str, list[str]] = {}  # machine and versions -> the commits measured there
        for c in commits:
            rows = [s for s in sources if s["commit"] == c]
            days = sorted({s["date"][:10] for s in rows})
            dirty = " with uncommitted changes" if any(s.get("dirty") for s in rows) else ""
            place = "; ".join(dict.fromkeys(f"{machine_text(s['machine'])}; {versions_text(s['versions'])}" for s in rows))
            when = days[0] if len(days) == 1 else f"{days[0]} to {days[-1]}"
            where.setdefault(place, []).append(f"`{short(c)}`{dirty} ({when})")
        for place, cs in where.items():
            lines.append(f"- Rows from commit{'s' if len(cs) > 1 else ''} {', '.join(cs)}: {place}.")
        return lines


# ----------------------------------------------------------------------------------------- tables
TABLES: dict[str, Callable[[dict], Table]] = {}


def table(name: str):
    def deco(fn):
        TABLES[name] = fn
        return fn
    return deco


def _lake(data: dict, slippery: bool) -> dict:
    return newest(data.get("frozenlake_seeds", []), lambda r: (r["env"], r["lib"], r["agent"], r["seed"]),
                  lambda r: r["slippery"] is slippery)


@table("frozenlake_slippery")
def frozenlake_slippery(data: dict) -> Table:
    rows = _lake(data, True)
    t = Table("seed", "qlearn DQN exact success", "wall s", "first eval >= 0.70 at step", "greedy optimal (of 11 states)",
              "max / mean abs(Q - Q*)", "qlearn tabular success", "wall s", "SB3 DQN success", "wall s")
    seeds = sorted({k[3] for k in rows if k[0] == "FrozenLake-v1"})
    for s in seeds:
        d, tb, sb = (rows.get(("FrozenLake-v1", lib, agent, s)) for lib, agent in
                     (("qlearn", "dqn"), ("qlearn", "tabular"), ("sb3", "dqn")))
        cells = [s]
        cells += ([f"{d['success']:.4f}", num(d["wall"]), f"{d['first_070']:,}" if d["first_070"] else "never",
                   f"{d['agree']}/{d['states']}", f"{d['max_diff']:.2f} / {d['mean_diff']:.2f}"] if d else [""] * 5)
        cells += [f"{tb['success']:.4f}", num(tb["wall"])] if tb else ["", ""]
        cells += [f"{sb['success']:.4f}", num(sb["wall"])] if sb else ["", ""]
        t.row(cells, [x for x in (d, tb, sb) if x])
    count = {}
    for lib, agent in (("qlearn", "dqn"), ("qlearn", "tabular"), ("sb3", "dqn")):
        got = [rows[k] for k in rows if k[1:3] == (lib, agent)]
        count[(lib, agent)] = (f"{sum(r['success'] >= 0.70 for r in got)}/{len(got)} seeds >= 0.70", got)
    t.row(["all", count[("qlearn", "dqn")][0], "", "", "", "", count[("qlearn", "tabular")][0], "",
           count[("sb3", "dqn")][0], ""], [r for _, got in count.values() for r in got])
    return t


@table("frozenlake_not_slippery")
def frozenlake_not_slippery(data: dict) -> Table:
    rows = _lake(data, False)
    with_steps = any("steps" in r for r in rows.values())
    t = Table("map", "agent", *(["steps"] if with_steps else []), "seeds", "exact success", "wall s per run")
    for env in sorted({k[0] for k in rows}, key=lambda e: ("8x8" in e, e)):
        for agent in ("dqn", "tabular"):
            got = [rows[k] for k in sorted(rows) if k[0] == env and k[2] == agent]
            if not got:
                continue
            succ = sorted({f"{r['success']:.4f}" for r in got})
            steps = sorted({r["steps"] for r in got if "steps" in r})
            t.row([f"{env}, not slippery", agent, *([", ".join(f"{s:,}" for s in steps)] if with_steps else []),
                   seed_span([r["seed"] for r in got]), f"{succ[0]} for all" if len(succ) == 1 else " / ".join(succ),
                   f"{min(r['wall'] for r in got):.0f}-{max(r['wall'] for r in got):.0f}"], got)
    return t


def _preset_rows(data: dict) -> dict:
    """classic_control's preset runs: newest row per (env, lib, seed), DQN, no --set."""
    return newest(data.get("classic_control", []), lambda r: (r["env"], r["lib"], r["seed"]),
                  lambda r: r.get("agent", "dqn") == "dqn" and not r.get("sets"))


def _ci(r: dict) -> str:
    ci = r.get("ci95")
    return f"{r['mean_return']:.1f} [{ci[0]:.1f}, {ci[1]:.1f}]" if ci else f"{r['mean_return']:.1f}"


@table("classic_control")
def classic_control(data: dict) -> Table:
    rows = _preset_rows(data)
    tabular = newest(data.get("classic_control", []), lambda r: (r["env"], r["seed"]), lambda r: r.get("agent") == "tabular")
    t = Table("env", "steps", "seed", "qlearn preset: mean return [95% CI]", "wall s", "SB3 Zoo: mean return [95% CI]",
              "wall s")
    for env in ("CartPole-v1", "MountainCar-v0", "Acrobot-v1"):
        seeds = sorted({k[2] for k in rows if k[0] == env})
        both = [s for s in seeds if (env, "sb3", s) in rows]
        for s in both:
            q, b = rows.get((env, "qlearn", s)), rows[(env, "sb3", s)]
            t.row([env, f"{b['steps']:,}", s, _ci(q) if q else "", num(q["wall"], 0) if q else "",
                   _ci(b), num(b["wall"], 0)], [x for x in (q, b) if x])
        alone = [rows[(env, "qlearn", s)] for s in seeds if s not in both and (env, "qlearn", s) in rows]
        if alone:  # qlearn-only seeds in one row
            rets = sorted({f"{r['mean_return']:.1f}" for r in alone})
            t.row([env, ", ".join(sorted({f"{r['steps']:,}" for r in alone})), seed_span([r["seed"] for r in alone]),
                   f"{rets[0]} each" if len(rets) == 1 else " / ".join(f"{r['mean_return']:.1f}" for r in alone),
                   f"{min(r['wall'] for r in alone):.0f}-{max(r['wall'] for r in alone):.0f}", "", ""], alone)
        got = {lib: [rows[(env, lib, s)] for s in seeds if (env, lib, s) in rows] for lib in ("qlearn", "sb3")}
        solved = {lib: f"{sum(r['mean_return'] >= THRESHOLD[env] for r in g)}/{len(g)} solved" for lib, g in got.items()}
        t.row([env, "", f"solved (>= {THRESHOLD[env]:g})", solved["qlearn"], "", solved["sb3"], ""],
              got["qlearn"] + got["sb3"])
        for (e, s), r in sorted(tabular.items()):
            if e == env:
                goal = f"; reached the goal {r['reached_goal']}" if "reached_goal" in r else ""
                t.row([env, f"{r['steps']:,}", f"{s} (tabular agent{goal})", _ci(r), num(r["wall"], 0), "", ""], [r])
    return t


def _reach(r: dict | None, digits: int = 1) -> str:
    if r is None:
        return ""
    return "not reached" if r["s"] is None else f"{r['s']:.{digits}f} ({r['step']:,})"


@table("classic_ttt")
def classic_ttt(data: dict) -> Table:
    rows = newest(data.get("classic_ttt", []), lambda r: (r["env"], r["lib"], r["seed"]))
    t = Table("env", "seed", "qlearn preset: s to threshold (env steps)", "SB3 Zoo: s (env steps)", "SB3 s : qlearn s")
    for env in ("CartPole-v1", "MountainCar-v0"):
        seeds = sorted({k[2] for k in rows if k[0] == env and k[1] in ("qlearn", "sb3")})
        recipe = any(k[0] == env and k[1] == "qlearn-batched" for k in rows)  # its seeds are in classic_ttt_recipe
        for s in [] if recipe else seeds:
            q, b = rows.get((env, "qlearn", s)), rows.get((env, "sb3", s))
            t.row([env, s, _reach(q), _reach(b), ratio(b and b["s"], q and q["s"]) if q and b else ""],
                  [x for x in (q, b) if x])
        got = {lib: [rows[(env, lib, s)] for s in seeds if (env, lib, s) in rows] for lib in ("qlearn", "sb3")}
        med = {lib: median([r["s"] for r in g]) for lib, g in got.items()}
        reached = {lib: sum(r["s"] is not None for r in g) for lib, g in got.items()}
        t.row([env, "median (not reached = infinite)" + ("; seeds in the recipe table" if recipe else ""), f"{num(med['qlearn'])} ({reached['qlearn']}/{len(got['qlearn'])} reached)",
               f"{num(med['sb3'])} ({reached['sb3']}/{len(got['sb3'])} reached)",
               ratio(med["sb3"], med["qlearn"])], got["qlearn"] + got["sb3"])
    return t


@table("classic_ttt_recipe")
def classic_ttt_recipe(data: dict) -> Table:
    env = "CartPole-v1"
    libs = ("qlearn", "sb3", "qlearn-batched", "sb3-like-batched")
    rows = newest(data.get("classic_ttt", []), lambda r: (r["lib"], r["seed"]), lambda r: r["env"] == env)
    t = Table("seed", "qlearn preset: s (env steps)", "SB3 Zoo", "qlearn `batched`", "SB3 given the same recipe")
    seeds = sorted({s for lib, s in rows if lib == "qlearn-batched"})
    for s in seeds:
        got = [rows.get((lib, s)) for lib in libs]
        t.row([s] + [_reach(r, 2) for r in got], [r for r in got if r])
    cols = {lib: [rows[(lib, s)] for s in seeds if (lib, s) in rows] for lib in libs}
    med = {lib: median([r["s"] for r in g]) for lib, g in cols.items()}
    t.row(["median (not reached = infinite; reached)"] + [f"{num(med[lib], 2)} ({sum(r['s'] is not None for r in cols[lib])}/{len(cols[lib])})"
                                  for lib in libs], [r for g in cols.values() for r in g])
    t.row(["SB3 Zoo median : this median"] + [ratio(med["sb3"], med[lib], 1 if lib != "qlearn-batched" else 0)
                                             for lib in libs], [r for g in cols.values() for r in g])
    return t


def _speed(data: dict, part: str) -> list[dict]:
    return [r for r in data.get("speed", []) if r["part"] == part]


@table("speed_sps")
def speed_sps(data: dict) -> Table:
    rows = newest(_speed(data, "sps"), lambda r: r["env"])
    t = Table("env (64x64, batch 64, lr 1e-3, a gradient step every 4 env steps, 20k steps; 1 agent, 1 env)",
              "qlearn env steps/s", "SB3 DQN env steps/s", "qlearn : SB3")
    for env, r in rows.items():
        t.row([env, f"{r['qlearn']:,.0f}", f"{r['sb3']:,.0f}", ratio(r["qlearn"], r["sb3"], 2)], [r])
    return t


TTT_COLS = (("qlearn_s", "qlearn `fast` recipe (linear, 256 envs)"), ("qlearn_batched_s", "qlearn `batched` recipe (64x64, 32 envs)"),
            ("sb3_fast_s", "SB3, fastest settings found (linear, 64 envs)"),
            ("sb3_like_s", "SB3 given qlearn's `fast` recipe"), ("sb3_matched_s", "SB3, MEASURED.md settings (1 env)"))


@table("speed_ttt")
def speed_ttt(data: dict) -> Table:
    rows = list(newest(_speed(data, "ttt"), lambda r: r["seed"]).values())
    seeds = seed_span([r["seed"] for r in rows])
    t = Table("settings", f"median s to 0.70, seeds {seeds}", "median env steps", "never reached",
              "SB3 fastest median : this median")
    ref = median([r["sb3_fast_s"] for r in rows]) if rows else None
    for key, label in TTT_COLS:
        med = median([r[key] for r in rows])
        steps = median([r[key[:-2] + "_steps"] for r in rows])
        t.row([label, num(med, 3), num(steps, 0), f"{sum(r[key] is None for r in rows)}/{len(rows)}",
               ratio(ref, med)], rows)
    if not rows:
        return t
    q, s = [r["qlearn_s"] for r in rows], [r["sb3_fast_s"] for r in rows]
    per = [INF if a is None else (0.0 if b is None else b / a) for a, b in zip(q, s)]
    rng, boot = random.Random(0), []
    for _ in range(10_000):
        idx = [rng.randrange(len(rows)) for _ in rows]
        mq, ms = median([q[i] for i in idx]), median([s[i] for i in idx])
        boot.append(ms / mq if mq and not math.isinf(ms) else 0.0)
    boot.sort()
    t.row(["`fast` : SB3 fastest per seed (median; seeds >= 10x; slowest)",
           "", "", "", f"{statistics.median(per):.1f}x; {sum(p >= 10 for p in per)}/{len(per)}; {min(per):.1f}x"], rows)
    t.row(["`fast` : SB3 fastest, bootstrap 95% interval over seeds", "", "", "", f"{boot[249]:.1f}-{boot[9749]:.1f}x"], rows)
    return t


@table("speed_many")
def speed_many(data: dict) -> Table:
    rows = newest(_speed(data, "many"), lambda r: r["k"])
    t = Table("seeds", "qlearn lockstep s (one process)", "SB3 one after another s", "lockstep : SB3",
              "qlearn single runs one after another s", "lockstep : single", "final networks >= 0.70 (lockstep)",
              "SB3 timed runs' final >= 0.70")
    for k in sorted(rows, reverse=True):
        r = rows[k]
        sb3_ok = sum(x >= 0.70 for x in r["sb3_single_scores"])
        t.row([f"{k} x {r['steps_per_seed']:,} env steps", num(r["lockstep_s"]), num(r["sb3_one_after_another_s"], 0),
               ratio(r["sb3_one_after_another_s"], r["lockstep_s"]) + " faster", num(r["qlearn_one_after_another_s"], 0),
               ratio(r["qlearn_one_after_another_s"], r["lockstep_s"]) + " faster",
               f"{r['final_ge_070']}/{k} (min {min(r['final_scores']):.4f})",
               f"{sb3_ok}/{len(r['sb3_single_scores'])} ({r['single_runs_timed']} timed, scaled to {k})"], [r])
    return t


@table("speed_memory")
def speed_memory(data: dict) -> Table:
    rows = newest(_speed(data, "memory"), lambda r: (r["env"], r["k"], r["capacity"]))
    t = Table("env", "agents x transitions", "process peak (VmHWM) MB", "replay arrays MB", "after imports MB")
    for (env, k, cap), r in rows.items():
        t.row([env, f"{k} x {cap:,}", num(r["peak_rss_mb"], 0), num(r["replay_bytes_mb"], 0),
               num(r["rss_before_agent_mb"], 0)], [r])
    return t


def _pixels(data: dict, part: str) -> list[dict]:
    return [r for r in data.get("pixels", []) if r["part"] == part]


@table("pixels_sps")
def pixels_sps(data: dict) -> Table:
    rows = newest(_pixels(data, "minatar") + _pixels(data, "pong"), lambda r: r["env"])
    t = Table("env (matched settings, bench/pixels.py)", "window", "qlearn env steps/s", "SB3 DQN env steps/s",
              "qlearn : SB3", "qlearn --seeds 8, env steps/s in total", "--seeds 8 : 8 SB3 runs in a row")
    for env, r in rows.items():
        k8 = r.get("qlearn_seeds8_total_sps")
        rounds = r.get("rounds", [])
        window = f"{r['window']:,} steps after {r['warmup']:,}"
        if rounds:  # medians of interleaved rounds; each round's own ratios beside them
            window += f", median of {len(rounds)} rounds"
        t.row([env, window, f"{r['qlearn_sps']:,.0f}", f"{r['sb3_sps']:,.0f}",
               _with_rounds(ratio(r["qlearn_sps"], r["sb3_sps"], 2), r, "ratio"),
               "" if k8 is None else f"{k8:,.0f}",
               "" if k8 is None else _with_rounds(ratio(k8, r["sb3_sps"], 2), r, "seeds8_vs_8_sb3_runs_in_a_row")],
              [r])
    return t


def _with_rounds(text: str, row: dict, key: str) -> str:
    """A ratio; for a row of interleaved rounds, the median of the rounds' own ratios and each of them."""
    rounds = row.get("rounds")
    if not rounds:
        return text
    return f"{row[key]:.2f}x (rounds: {', '.join(f'{x[key]:.2f}' for x in rounds)})"


@table("pixels_memory")
def pixels_memory(data: dict) -> Table:
    rows = newest(_pixels(data, "memory"), lambda r: (r["env"], r["capacity"]))
    t = Table("env", "transitions (4x84x84 frames)", "qlearn replay memory GB", "process peak (VmHWM) GB",
              "1M transitions would need GB", "SB3: obs + next_obs GB", "SB3 optimize_memory_usage GB")
    for (env, cap), r in rows.items():
        t.row([env, f"{cap:,}", f"{r['replay_gb']:.3f}", f"{r['peak_rss_gb']:.3f}", f"{r['gb_1m']:.2f}",
               f"{r['sb3_bytes_100k'] / 1e9:.2f}", f"{r['sb3_optimized_bytes_100k'] / 1e9:.2f}"], [r])
    return t


@table("minatar_scores")
def minatar_scores(data: dict) -> Table:
    rows = newest(data.get("minatar_scores", []), lambda r: (r["env"], r["seed"]))
    t = Table("game", "seed", "env steps", "qlearn final network: mean score (95% CI)", "delivered (best evaluated)",
              "SB3 at 500k (shared/MEASURED.md, seed 0)", "qlearn env steps/s (training)", "run started at")
    for (env, seed), r in rows.items():
        lo, hi = r["final_ci95"]
        dlo, dhi = r["delivered_ci95"]
        sb3 = "" if r["sb3_500k_mean"] is None else f"{r['sb3_500k_mean']:.2f} +- {r['sb3_500k_std']:.1f} (std)"
        t.row([env, seed, f"{r['steps']:,}", f"{r['final_mean']:.2f} [{lo:.2f}, {hi:.2f}]",
               f"{r['delivered_mean']:.2f} [{dlo:.2f}, {dhi:.2f}]", sb3, f"{r['sps']:,.0f}",
               f"`{short(r['started_at_commit'])}`"], [r])
    return t


@table("distributional_frozenlake")
def distributional_frozenlake(data: dict) -> Table:
    rows = newest([r for r in data.get("distributional", []) if r["part"] == "frozenlake"], lambda r: r["kind"])
    t = Table("head (FrozenLake-v1 preset, 5 seeds in lockstep)", "seeds >= 0.70 exact success",
              "exact success per seed", "start state Wasserstein-1 per seed (floor)", "<= 0.05", "wall s")
    for kind, r in rows.items():
        seeds = r["seeds"]
        t.row([kind, f"{r['solved']}/{len(seeds)}", " ".join(f"{s['exact_success']:.3f}" for s in seeds),
               " ".join(f"{s['w1_start']:.3f} ({s['floor_start']:.3f})" for s in seeds),
               f"{r['within_0.05']}/{len(seeds)}", f"{r['wall_s']:.0f}"], [r])
    return t


@table("distributional_peer")
def distributional_peer(data: dict) -> Table:
    rows = newest([r for r in data.get("distributional", []) if r["part"] == "peer"],
                  lambda r: (r["env"], r["lib"], r["kind"]))
    t = Table("env", "library, head", "seeds solved (final; qlearn delivered)", "final mean return per seed",
              "wall s (5 seeds)", "sb3-contrib : qlearn wall")
    for (env, lib, kind), r in sorted(rows.items(), key=lambda kv: (kv[0][0], kv[0][1] != "sb3-contrib", kv[0][2])):
        seeds = r["seeds"]
        solved = f"{r['solved']}/{len(seeds)}" + (f" ({r['solved_delivered']}/{len(seeds)})" if lib == "qlearn" else "")
        t.row([env, f"{lib} {kind}", solved, " ".join(f"{s['final_mean']:.1f}" for s in seeds), f"{r['wall_s']:.0f}",
               f"{r['speedup_vs_peer']:.2f}x" if lib == "qlearn" else "1 (5 commands in a row)"], [r])
    return t


@table("rainbow_ablation")
def rainbow_ablation(data: dict) -> Table:
    rows = newest(data.get("rainbow_ablation", []), lambda r: (r["env"], r["config"]))
    goal = {"CartPole-v1": 475.0, "MountainCar-v0": -110.0}
    t = Table("env", "configuration (5 seeds in lockstep)", "final IQM (95% CI)", "final per seed",
              "mean of the IQM curve", "first evaluation with IQM >= goal", "wall s")
    for (env, name), r in rows.items():
        hit = next((s for s, v in zip(r["eval_steps"], r["iqm"]) if env in goal and v >= goal[env]), None)
        lo, hi = r["final_iqm_ci95"]
        t.row([env, name, f"{r['final_iqm']:.1f} [{lo:.1f}, {hi:.1f}]", " ".join(f"{x:.0f}" for x in r["final_scores"]),
               f"{sum(r['iqm']) / max(len(r['iqm']), 1):.1f}", f"{hit:,}" if hit is not None else "not reached",
               f"{r['wall_s']:.0f}"], [r])
    return t


@table("pqn_classic")
def pqn_classic(data: dict) -> Table:
    rows = newest([r for r in data.get("pqn", []) if r["part"] == "classic"], lambda r: (r["env"], r["lib"]))
    t = Table("env", "library, settings", "seeds at the goal", "score per seed", "wall s (8 seeds)",
              "SB3 : this wall")
    envs = list(dict.fromkeys(env for env, _ in rows))
    for (env, lib), r in sorted(rows.items(), key=lambda kv: (envs.index(kv[0][0]), kv[0][1] == "sb3")):
        if lib == "sb3":
            scores = " ".join(f"{s['step']:,}" if s["step"] else "never" for s in r["seeds"])
            cells = [env, f"SB3 DQN, {r['settings']}", f"{r['solved']}/{len(r['seeds'])} (reached)",
                     f"env steps to goal: {scores}", f"{r['wall_s']:.1f} (sum to goal, checks excluded)", "1"]
        else:
            digits = 3 if env == "FrozenLake-v1" else 1
            scores = " ".join(f"{s['score']:.{digits}f}" for s in r["seeds"])
            cells = [env, f"`{r['command']}`", f"{r['solved']}/{len(r['seeds'])} (delivered)", scores,
                     f"{r['wall_s']:.1f} (whole command)", ratio(r["wall_s"] * r["sb3_wall_over_this"], r["wall_s"], 2)]
        t.row(cells, [r])
    return t


@table("toy_text")
def toy_text(data: dict) -> Table:
    rows = newest([r for r in data.get("toy_text", []) if r["env"] != "Blackjack-v1"], lambda r: (r["env"], r["agent"]))
    t = Table("env", "settings", "agent", "optimum (best within limit)", "delivered, per seed", "within 2%",
              "final network, per seed", "within 2%", "delivered max abs(Q - Q*)", "wall s (5 seeds)")
    envs = list(dict.fromkeys(env for env, _ in rows))
    for (env, agent), r in sorted(rows.items(), key=lambda kv: (envs.index(kv[0][0]), kv[0][1])):
        digits = 1 if abs(r["optimum"]) >= 5 else 3
        role = "checked on" if r["role"] == "preset" else r["role"]  # rows of e26ff29 said "preset" for the 8x8 map
        how = f"derived ({role}), {r['steps']:,} steps" if r["derived"] else f"preset, {r['steps']:,} steps"
        how += f", {r['n_envs']} envs" if r["n_envs"] > 1 else ""
        n, floor = len(r["seeds"]), r["optimum"] - 0.02 * abs(r["optimum"])  # at most 2% below (above is better)
        t.row([env, how, agent, f"{r['optimum']:.{digits}f} ({r['best_within_limit']:.{digits}f})",
               " ".join(f"{x:.{digits}f}" for x in r["delivered"]), f"{sum(x >= floor for x in r['delivered'])}/{n}",
               " ".join(f"{x:.{digits}f}" for x in r["final"]), f"{sum(x >= floor for x in r['final'])}/{n}",
               " ".join(f"{x:.3f}" if abs(x) < 1 else f"{x:.2f}" for x in r.get("q_error", [])), f"{r['wall_s']:.1f}"], [r])
    return t


@table("toy_text_blackjack")
def toy_text_blackjack(data: dict) -> Table:
    rows = newest([r for r in data.get("toy_text", []) if r["env"] == "Blackjack-v1"], lambda r: r["agent"])
    t = Table("agent", "settings", "delivered: mean return per seed [95% CI]", "CI holds the reference",
              "computed optimum", "its policy on the env [95% CI]", "wall s (5 seeds)")
    for agent, r in sorted(rows.items()):
        how = ("derived" if r["derived"] else "preset") + f", {r['steps']:,} steps, {r['n_envs']} envs, "
        how += f"{r['episodes']:,} games per agent"
        cells = "; ".join(f"{d['mean']:.3f} [{d['ci95'][0]:.3f}, {d['ci95'][1]:.3f}]" for d in r["delivered"])
        holds = sum(d["ci95"][0] <= r["optimum"] <= d["ci95"][1] for d in r["delivered"])
        o = r["optimal_policy"]
        t.row([agent, how, cells, f"{holds}/{len(r['delivered'])}", f"{r['optimum']:.4f}",
               f"{o['mean']:.3f} [{o['ci95'][0]:.3f}, {o['ci95'][1]:.3f}]", f"{r['wall_s']:.1f}"], [r])
    return t


@table("pqn_minatar")
def pqn_minatar(data: dict) -> Table:
    rows = newest([r for r in data.get("pqn", []) if r["part"] == "minatar"], lambda r: (r["env"], r["lib"]))
    t = Table("env", "agent (3 seeds in lockstep)", "env steps per seed", "last agent per seed (mean)",
              "delivered agent per seed", "wall s (3 seeds)")
    for (env, lib), r in rows.items():
        final = " ".join(f"{s['final']:.2f}" for s in r["seeds"])
        delivered = " ".join(f"{s['score']:.2f}" for s in r["seeds"])
        t.row([env, f"`{r['command']}`", f"{r['steps']:,}", f"{final} ({r['final_mean']:.2f})", delivered,
               f"{r['wall_s']:.0f} (whole command)"], [r])
        # The DQN preset at the same steps, from bench/minatar_scores.py (another run: about two hours here).
        dqn = [d for d in newest(data.get("minatar_scores", []), lambda d: (d["env"], d["seed"]),
                                 lambda d: d["env"] == env and d["steps"] == r["steps"]
                                 and len(d.get("lockstep_seeds", [])) == r["k"]).values()]
        if dqn and not any(lb == "qlearn dqn" for (e, lb) in rows if e == env):
            mean = sum(d["final_mean"] for d in dqn) / len(dqn)
            t.row([env, f"DQN preset, `{dqn[0]['command']}` (another run)", f"{dqn[0]['steps']:,}",
                   " ".join(f"{d['final_mean']:.2f}" for d in dqn) + f" ({mean:.2f})",
                   " ".join(f"{d['delivered_mean']:.2f}" for d in dqn), f"{dqn[0]['train_wall_s']:.0f} (training)"],
                  dqn)
    return t


@table("sweep_overhead")
def sweep_overhead(data: dict) -> Table:
    src = data.get("sweep_overhead", [])
    last = newest(src, lambda r: (r["case"], r["load"], r["arm"]))  # each arm's newest script run, all its pairs
    t = Table("env, agent, seeds", "busy processes beside", "arm", "pairs", "training env steps/s per seed (median)",
              "against direct (median [range] of pairs)", "whole command s (median)", "Ray start s", "Ray shutdown s")
    for (case, load, arm), r in sorted(last.items(), key=lambda kv: (kv[0][0], kv[0][1])):
        run = [x for x in src if (x["case"], x["load"], x["arm"], x.get("run", x["date"])) ==
               (case, load, arm, r.get("run", r["date"]))]
        base = {x.get("rep", 0): x for x in src if (x["case"], x["load"], x["arm"]) == (case, load, "direct")
                and x.get("run", x["date"]) == r.get("run", r["date"])}
        pairs = [x["sps"] / base[x.get("rep", 0)]["sps"] for x in run if x.get("rep", 0) in base]
        against = ""
        if arm != "direct" and pairs:
            against = f"{statistics.median(pairs):.2f}x" + (f" [{min(pairs):.2f}, {max(pairs):.2f}]" if len(pairs) > 1 else "")
        med = lambda key: statistics.median([x[key] for x in run]) if all(key in x for x in run) else None  # noqa: E731
        t.row([f"{r['env']} {r['agent']} --seeds {r['seeds']} ({r['steps']:,} steps)", load, arm, len(run),
               num(med("sps"), 0), against, num(med("command_s")), num(med("ray_start_s")), num(med("ray_stop_s"))],
              run + list(base.values()))
    return t


@table("ale_vector")
def ale_vector(data: dict) -> Table:
    src = data.get("ale_vector", [])
    env_rows = newest([r for r in src if r["part"] == "env"], lambda r: (r["n_envs"], r["arm"]))
    train_rows = newest([r for r in src if r["part"] == "train"], lambda r: r["arm"])
    t = Table("part", "env, N envs", "arm", "env steps/s", "against SB3 (env) / vector=gymnasium (train)")
    for (n, arm), r in sorted(env_rows.items(), key=lambda kv: kv[0][0]):
        t.row(["env stepping, random actions", f"{r['env']}, {n}", arm, num(r["sps"], 0), ratio(r["sps"], r["peer_sps"], 2)],
              [r])
    base = train_rows.get("qlearn dqn vector=gymnasium")
    for arm, r in train_rows.items():
        t.row([f"DQN training, {r['steps']:,} steps", f"{r['env']}, {r['n_envs']}", arm, num(r["sps"], 0),
               ratio(r["sps"], base["sps"], 2) if base else ""], [r] + ([base] if base else []))
    return t


@table("tuning")
def tuning(data: dict) -> Table:
    rows = newest(data.get("tuning", []), lambda r: (r["case"], r["seeds_per_trial"]))
    t = Table("env, agent", "seeds per trial", "trials (finished / stopped early)", "env steps", "sweep wall s",
              "winning configuration", "its search score", "32 held-out seeds: IQM [95% CI]", "mean / min",
              "exact success IQM / min")
    for (case, k), r in sorted(rows.items(), key=lambda kv: (kv[0][0], -kv[0][1])):
        h = r["held_out"]
        params = ", ".join(f"{a}={v:.3g}" if isinstance(v, float) else f"{a}={v}" for a, v in r["best_params"].items())
        exact = f"{h['exact_iqm']:.4f} / {h['exact_min']:.4f}" if "exact_iqm" in h else ""
        t.row([f"{r['env']} {r['agent']}", k, f"{r['trials']} ({r['finished']} / {r['stopped_early']})",
               f"{r['env_steps']:,}", num(r["sweep_s"], 0), params, f"{r['best_score']:.3f}",
               f"{h['iqm']:.3f} [{h['iqm_ci95'][0]:.3f}, {h['iqm_ci95'][1]:.3f}]", f"{h['mean']:.3f} / {h['min']:.3f}",
               exact], [r])
    return t


@table("step_time")
def step_time(data: dict) -> Table:
    rows = newest(data.get("step_time", []), lambda r: (tuple(r.get("hidden", (64, 64))), r["k"], r["batch"]))
    t = Table("network", "K agents", "batch", "numpy step ms", "autograd ms", "autograd : numpy")
    for (hidden, k, b), r in rows.items():
        t.row(["x".join(map(str, hidden)) or "linear", k, f"{b:,}", f"{r['numpy_ms']:.2f}", f"{r['torch_ms']:.2f}",
               ratio(r["torch_ms"], r["numpy_ms"])], [r])
    return t


@table("recipe_reliability")
def recipe_reliability(data: dict) -> Table:
    src = data.get("recipe_reliability", [])
    groups = newest(src, lambda r: (r["first_seed"], r["k"]), lambda r: r["mode"] == "lockstep")
    singles = newest(src, lambda r: r["seed"], lambda r: r["mode"] == "single")
    t = Table("runs (final network, keep_best off)", "seeds", ">= 0.70", "at the optimum (0.7402)", "lowest")
    for k in sorted({k for _, k in groups}):
        got = [groups[key] for key in sorted(groups) if key[1] == k]
        sc = [x for r in got for x in r["scores"]]
        seeds = [r["first_seed"] + i for r in got for i in range(k)]
        t.row([f"{len(got)} lockstep groups of {k}", seed_span(seeds), f"{sum(x >= 0.70 for x in sc)}/{len(sc)}",
               f"{sum(round(x, 4) == 0.7402 for x in sc)}/{len(sc)}", f"{min(sc):.4f}"], got)
    if singles:
        sc = {s: r["score"] for s, r in singles.items()}
        low = min(sc, key=sc.get)
        t.row(["one seed at a time", seed_span(list(sc)), f"{sum(x >= 0.70 for x in sc.values())}/{len(sc)}",
               f"{sum(round(x, 4) == 0.7402 for x in sc.values())}/{len(sc)}", f"{sc[low]:.4f} (seed {low})"],
              list(singles.values()))
    return t


def _setting(d: dict) -> str:
    return ", ".join(f"{k}={'x'.join(map(str, v)) or 'linear' if isinstance(v, list) else v}" for k, v in d.items())


@table("ttt_search")
def ttt_search(data: dict) -> Table:
    src = data.get("ttt_search", [])
    t = Table("library", "stage-2 rank", "setting", "median s to 0.70, seeds 0-19", "never reached",
              "final network >= 0.70 (of 20)")
    best = {}
    for lib in ("qlearn", "sb3"):
        stage1 = newest(src, lambda r: json.dumps(r["setting"], sort_keys=True), lambda r: r["lib"] == lib and r["stage"] == 1)
        stage2 = sorted(newest(src, lambda r: r["rank"], lambda r: r["lib"] == lib and r["stage"] == 2).values(),
                        key=lambda r: r["rank"])
        for r in stage2:
            t.row([f"{lib} ({len(stage1)} settings on seeds 0-4)", r["rank"], _setting(r["setting"]), num(r["median_s"], 3),
                   f"{r['never']}/{len(r['seeds'])}", f"{r['final_ge_070']}/{len(r['final_scores'])}" if "final_scores" in r else ""],
                  [r])
        if stage2:
            best[lib] = stage2[0]
    if len(best) == 2:
        t.row(["winners", "", "SB3's median : qlearn's", ratio(best["sb3"]["median_s"], best["qlearn"]["median_s"]), "", ""],
              list(best.values()))
    return t


@table("gpu")
def gpu(data: dict) -> Table:
    rows = newest(data.get("gpu", []), lambda r: (r["device"], r["k"], tuple(r["sets"])))
    base = next((r for (dev, k, sets), r in rows.items() if dev.startswith("cuda") and k == 1
                 and sets == ("checkpoint_every=0",)), None)
    t = Table("device", "seeds", "settings", "train s", "total s", "train vs 1 seed on the GPU", "env steps/s (all seeds)",
              "final networks >= 0.70", "delivered (best kept) >= 0.70", "peak GPU MB")
    order = sorted(rows, key=lambda k: (k[2] != ("checkpoint_every=0",), not k[0].startswith("cuda"), k[1]))
    for key in order:
        r = rows[key]
        own = r.get("first_k") == 1 and r["device"].startswith("cuda")  # its own run's lone GPU seed
        vs = f"{r['train_vs_first']:.2f}x" if own else ratio(r["train_s"], base and base["train_s"], 2)
        t.row([r["device"], f"{r['k']:,}", " ".join(r["sets"]), num(r["train_s"]), num(r["total_s"]), vs,
               f"{r['env_steps_per_s']:,}", f"{r['final_ge_070']:.1%}", f"{r['delivered_ge_070']:.1%}",
               "" if r.get("peak_gpu_mb") is None else f"{r['peak_gpu_mb']:,}"], [r] + ([] if own or not base else [base]))
    return t


# ------------------------------------------------------------------------------------------- main
def generate(text: str, data: dict) -> str:
    def fill(m: re.Match) -> str:
        name = m["name"]
        if name not in TABLES:
            raise SystemExit(f"bench_tables: unknown table {name!r} (known: {', '.join(TABLES)})")
        return m.group(1) + "\n".join(TABLES[name](data).render()) + "\n" + m.group(4)
    return MARK.sub(fill, text)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="exit 1 if the file is not what the data give; write nothing")
    ap.add_argument("--list", action="store_true", help="print the table names")
    ap.add_argument("--file", type=Path, default=ROOT / "BENCHMARKS.md")
    ap.add_argument("--results", type=Path, default=ROOT / "bench" / "results")
    args = ap.parse_args(argv)
    if args.list:
        print("\n".join(TABLES))
        return 0
    text = args.file.read_text()
    new = generate(text, load(args.results))
    missing = [n for n in TABLES if f"<!-- table:{n} -->" not in text]
    if args.check:
        stale = [m["name"] for m, n in zip(MARK.finditer(text), MARK.finditer(new)) if m.group(0) != n.group(0)]
        if new != text:
            print(f"{args.file.name} is out of date with bench/results (tables: {', '.join(stale) or '?'}); "
                  f"run: .venv/bin/python scripts/bench_tables.py", file=sys.stderr)
            return 1
        if missing:
            print(f"note: tables not in {args.file.name}: {', '.join(missing)}", file=sys.stderr)
        return 0
    if new != text:
        args.file.write_text(new)
    print(f"{args.file.name}: {len(list(MARK.finditer(new)))} tables" + (f" (not used: {', '.join(missing)})" if missing else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
