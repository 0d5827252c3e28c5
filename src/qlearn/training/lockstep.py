"""Many seeds in one process: K independent agents, each on N environments, trained in lockstep.

The agent holds K stacked agents (own initialisation, exploration, replay memory and optimiser state
each); the batched env steps K x N environments at once. Every ``eval_every`` steps each agent is scored
(exactly on tabular envs, by greedy episodes on a batched evaluation env otherwise) and, with
``keep_best``, its best weights so far are kept per agent. At the end each agent is written to its own
run folder (usable with ``qlearn evaluate`` and ``qlearn qtable``) and the seeds are summarised with
bootstrap confidence intervals and the interquartile mean.
"""

from __future__ import annotations

import math
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from qlearn.envs.tabular import TabularMDP, greedy_policy, policy_returns
from qlearn.errors import QlearnError
from qlearn.fileio import atomic_write
from qlearn.runs import AGENT, LAST, write_json
from qlearn.stats import bootstrap_ci, summarize
from qlearn.training import checkpoint as ckpt
from qlearn.training.seed_logs import SeedLogs
from qlearn.training.threads import configure_threads


@dataclass
class ManyResult:
    """Outcome of :func:`train_many`: per-agent scores and the evaluation history ``[evals, K]``."""

    agent: Any
    steps: int
    wall_time: float
    eval_steps: list[int] = field(default_factory=list)
    eval_scores: list[np.ndarray] = field(default_factory=list)
    eval_ci95: list[tuple[float, float]] = field(default_factory=list)  # bootstrap 95% CI of each mean
    best_scores: np.ndarray | None = None
    final_scores: np.ndarray | None = None
    delivered_scores: np.ndarray | None = None
    episodes: np.ndarray | None = None
    run_dirs: list[Path] = field(default_factory=list)
    parent: Path | None = None
    interrupted: bool = False
    n_envs: int = 1

    @property
    def env_steps_per_second(self) -> float:
        """Environment steps of all agents together per second."""
        return self.steps * self.agent.k / max(self.wall_time, 1e-9)

    def aggregate(self) -> dict[str, Any]:
        curve = [{"step": s, "mean": float(row.mean()), "ci95": list(ci)}
                 for s, row, ci in zip(self.eval_steps, self.eval_scores, self.eval_ci95)]
        return {"seeds": list(self.agent.seeds), "final_score": summarize(self.delivered_scores),
                "scores": [float(x) for x in self.delivered_scores], "curve": curve,
                "steps_per_agent": self.steps, "wall_time": round(self.wall_time, 3),
                "env_steps_per_second": round(self.env_steps_per_second, 1)}


def score_agents(agent: Any, mdp: TabularMDP | None, eval_env: Any, episodes: int, env_id: str) -> np.ndarray:
    """Greedy score of each of the K agents: exact success probability, or mean return of ``episodes``
    greedy episodes per agent played in parallel on ``eval_env`` (K x episodes envs)."""
    if mdp is not None:
        return policy_returns(mdp, greedy_policy(agent.q_table(None)))
    obs = eval_env.reset()
    k, n = eval_env.k, eval_env.n
    total = np.zeros((k, n))
    running = np.ones((k, n), dtype=bool)
    limit = eval_env.horizon or 10_000
    on_gpu = _on_gpu(agent, eval_env)
    for _ in range(limit):
        a = agent.act(obs if on_gpu else obs.cpu().numpy(), greedy=True)
        obs, r, te, tr, _ = eval_env.step(torch.as_tensor(a))
        total += r.cpu().numpy() * running
        running &= ~(te | tr).cpu().numpy()
        if not running.any():
            break
    return total.mean(axis=1)


def _on_gpu(agent: Any, venv: Any) -> bool:
    """A DQN and a native batched env on the same GPU: acting and storing stay there (no numpy copies)."""
    device = getattr(agent, "device", None)
    return getattr(agent, "kind", "") == "dqn" and device is not None and device.type != "cpu" and \
        getattr(venv, "device", None) == device


def train_many(agent: Any, venv: Any, steps: int, *, env_id: str, eval_env: Any = None, eval_every: int = 2_000,
               eval_episodes: int = 20, keep_best: bool = True, run_dirs: list[Path] | None = None,
               progress: bool = True, aggregate_dir: Path | None = None, checkpoint_every: int = 0,
               resume: dict[str, Any] | None = None) -> ManyResult:
    """Train K agents on K x N environments for ``steps`` environment steps per agent.

    With ``run_dirs`` (one per agent) each gets a run folder; ``aggregate_dir`` gets TensorBoard scalars
    of the seeds together (mean, IQM, 95% interval of the evaluation score) and, every
    ``checkpoint_every`` env steps, ``checkpoint.pkl``: the agents with their replay memories, every
    generator, the envs and the loop, from which ``resume=`` (that file, loaded) continues exactly. Ctrl-C
    stops cleanly: the agents and logs so far are written, marked interrupted.
    """
    if agent.k != venv.k:
        raise QlearnError(f"the agent holds K={agent.k} agents but the env batch has K={venv.k}")
    configure_threads()
    k, n = venv.k, venv.n
    spec_env = getattr(venv, "spec", None)
    mdp = None
    if hasattr(venv, "cum"):  # native tabular env: score exactly from the same model
        from qlearn.envs import make_env

        mdp = TabularMDP.from_env(make_env(env_id, **(spec_env.kwargs if spec_env else {})))
    if mdp is None and eval_env is None:
        raise QlearnError("sampled scoring needs eval_env (a batched env with K x eval_episodes envs)")
    if checkpoint_every and aggregate_dir is None:
        raise QlearnError("checkpoints of a many-seed run go to aggregate_dir: give one, or checkpoint_every=0")
    logs = SeedLogs(k, env_id, run_dirs, aggregate_dir,
                    purge_step=None if resume is None else int(resume["loop"]["step"]) + 1)
    result = ManyResult(agent, 0, 0.0, n_envs=n)
    best = [w.detach().clone() for w in agent.weights()]
    best_scores = np.full(k, -np.inf)
    ep_ret = np.zeros((k, n))
    ep_len = np.zeros((k, n), dtype=np.int64)
    iterations = math.ceil(steps / n)
    obs, step, next_eval, spent = venv.reset(), 0, eval_every, 0.0
    if resume is not None:
        try:  # a checkpoint in the right format but with missing or misshapen parts
            agent.load_state_dict(resume["agent"])
            agent.set_rng_state(resume["agent_rng"])
            ckpt.set_batched_env_state(venv, resume["env"])
            if eval_env is not None:
                ckpt.set_batched_env_state(eval_env, resume["eval_env"])
            loop = resume["loop"]
            step, next_eval, spent = int(loop["step"]), int(loop["next_eval"]), float(loop["wall_time"])
            obs = loop["obs"].to(venv.device)
            ep_ret, ep_len, best_scores = loop["ep_ret"], loop["ep_len"], loop["best_scores"]
            with torch.no_grad():
                for b, saved in zip(best, loop["best"], strict=True):
                    b.copy_(saved)
            result.eval_steps, result.eval_scores = list(loop["eval_steps"]), list(loop["eval_scores"])
            result.eval_ci95 = [tuple(ci) for ci in loop["eval_ci95"]]
            logs.episodes[:] = loop["episodes"]
        except (KeyError, TypeError, ValueError, RuntimeError, AttributeError) as exc:
            logs.close()
            raise QlearnError(f"the training checkpoint is malformed ({type(exc).__name__}: {exc})") from None
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=iterations * n, initial=step, unit="step", desc=f"{agent.kind} x{k} seeds {env_id}",
                   mininterval=0.5)

    def save_checkpoint() -> None:
        logs.flush()  # every row up to this step is on disk before the checkpoint says so
        ckpt.save(aggregate_dir / ckpt.FILENAME, {
            "agent": agent.state_dict(include_buffer=True), "agent_rng": agent.rng_state(),
            "env": ckpt.batched_env_state(venv),
            "eval_env": None if eval_env is None else ckpt.batched_env_state(eval_env),
            "loop": {"step": step, "next_eval": next_eval, "obs": obs, "ep_ret": ep_ret, "ep_len": ep_len,
                     "best": best, "best_scores": best_scores, "eval_steps": result.eval_steps,
                     "eval_scores": result.eval_scores, "eval_ci95": result.eval_ci95,
                     "episodes": logs.episodes, "wall_time": spent + time.perf_counter() - start}})

    def evaluate_now(step: int) -> None:
        nonlocal best_scores
        scores = score_agents(agent, mdp, eval_env, eval_episodes, env_id)
        better = scores > best_scores
        if better.any():
            mask = torch.as_tensor(better)
            with torch.no_grad():
                for b, w in zip(best, agent.weights()):
                    b[mask.to(b.device)] = w[mask.to(w.device)]
            best_scores = np.where(better, scores, best_scores)
        result.eval_ci95.append(bootstrap_ci(scores, seed=len(result.eval_steps)))
        result.eval_steps.append(step)
        result.eval_scores.append(scores)
        logs.evaluated(step, scores, best_scores, result.eval_ci95[-1], mdp is not None,
                       step / max(time.perf_counter() - start, 1e-9))

    start = time.perf_counter()
    on_gpu = _on_gpu(agent, venv)
    try:
        while step < iterations * n:
            o = obs if on_gpu else obs.cpu().numpy()
            actions = agent.act(o)
            obs, reward, term, trunc, final = venv.step(torch.as_tensor(actions))
            r, te, tr = reward.cpu().numpy(), term.cpu().numpy(), trunc.cpu().numpy()
            if on_gpu:
                agent.observe(o, actions, reward, final, term, trunc)
            else:
                agent.observe(o, actions, r, final.cpu().numpy(), te, tr)
            step += n
            ep_ret += r
            ep_len += 1
            done = te | tr
            if done.any():
                m = agent.metrics()
                logs.episodes_ended(step, done, ep_ret, ep_len, te, tr, m["epsilon"], m.get("loss"),
                                    step / max(time.perf_counter() - start, 1e-9))
                ep_ret[done] = 0.0
                ep_len[done] = 0
            if step >= next_eval or step >= steps:
                evaluate_now(step)
                next_eval += eval_every
            if checkpoint_every and (step // checkpoint_every > (step - n) // checkpoint_every) and step < steps:
                save_checkpoint()
            if bar is not None and step % (500 * n) < n:
                bar.update(step - bar.n)
                last = result.eval_scores[-1] if result.eval_scores else None
                bar.set_postfix({"eps": f"{agent.metrics()['epsilon']:.3f}",
                                 "mean score": f"{last.mean():.3f}" if last is not None else "-"}, refresh=False)
    except KeyboardInterrupt:
        result.interrupted = True
    if bar is not None:
        bar.update(step - bar.n)
        bar.close()
    if not result.eval_scores or result.eval_steps[-1] != step:  # stopped between evaluations: score the end
        evaluate_now(step)
    logs.close()
    result.wall_time = spent + time.perf_counter() - start
    result.steps = step
    result.final_scores = result.eval_scores[-1]
    result.best_scores = best_scores
    result.episodes = logs.episodes.copy()
    _deliver(agent, result, best, keep_best, run_dirs or [])
    return result


def _deliver(agent: Any, result: ManyResult, best: list[torch.Tensor], keep_best: bool, run_dirs: list[Path]) -> None:
    """Write each agent's last network and the delivered one (its best if better and ``keep_best``) and a
    summary per seed; the stacked agent is left holding the delivered networks."""
    for i, d in enumerate(run_dirs):  # the last networks, one at a time (each select() has a replay memory)
        agent.select(i).save(d / LAST)
    use_best = keep_best & (result.best_scores > result.final_scores)
    if use_best.any():
        mask = torch.as_tensor(use_best)
        with torch.no_grad():
            for b, w in zip(best, agent.weights()):
                w[mask.to(w.device)] = b[mask.to(b.device)]
        if hasattr(agent, "sync_target"):
            agent.sync_target()
    result.delivered_scores = np.where(use_best, result.best_scores, result.final_scores)
    for i, d in enumerate(run_dirs):
        if use_best[i]:
            agent.select(i).save(d / AGENT)
        else:  # the delivered agent is the last one: the same file, copied
            with open(d / LAST, "rb") as src, atomic_write(d / AGENT) as dst:
                shutil.copyfileobj(src, dst)
        write_json(d / "summary.json", {
            "run_dir": str(d), "steps": result.steps, "episodes": int(result.episodes[i]),
            "wall_time": round(result.wall_time, 3), "final_score": float(result.final_scores[i]),
            "best_score": float(result.best_scores[i]), "score": float(result.delivered_scores[i]),
            "interrupted": result.interrupted})
    result.run_dirs = list(run_dirs)
