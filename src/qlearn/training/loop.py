"""The training loop: act, step the env, observe, evaluate now and then, keep the best, log it all.

One loop for every agent of the protocol. Here it drives K=1 agent on N=1 Gymnasium env; the agent's
``act``/``observe`` are already batched ``[K, N]``.
"""

from __future__ import annotations

import copy
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import gymnasium as gym
import numpy as np

from qlearn.envs.make import success_of
from qlearn.errors import DivergenceError, QlearnError
from qlearn.runs import AGENT, LAST, CsvLog, write_json
from qlearn.training import checkpoint as ckpt
from qlearn.training.scoring import Scorer
from qlearn.training.threads import configure_threads

EPISODE_FIELDS = ["step", "episode", "return", "length", "success", "epsilon", "loss", "sps"]
EVAL_FIELDS = ["step", "score", "success", "best_score"]


class Callback(Protocol):
    """Optional hooks; each may return ``False`` to stop training early."""

    def on_episode(self, info: dict[str, Any]) -> bool | None: ...
    def on_eval(self, info: dict[str, Any]) -> bool | None: ...


@dataclass
class TrainResult:
    """What :func:`train` returns."""

    agent: Any
    run_dir: Path | None
    steps: int
    episodes: int
    wall_time: float
    final_score: float | None = None
    best_score: float | None = None
    best_step: int | None = None
    delivered_score: float | None = None
    interrupted: bool = False
    history: list[dict[str, float]] = field(default_factory=list)

    @property
    def sps(self) -> float:
        return self.steps / max(self.wall_time, 1e-9)

    def summary(self) -> dict[str, Any]:
        return {"run_dir": str(self.run_dir) if self.run_dir else None, "steps": self.steps,
                "episodes": self.episodes, "wall_time": round(self.wall_time, 3), "sps": round(self.sps, 1),
                "final_score": self.final_score, "best_score": self.best_score, "best_step": self.best_step,
                "score": self.delivered_score, "interrupted": self.interrupted}


class _Logs:
    """CSV files and TensorBoard scalars of one run folder (no-ops without a folder)."""

    def __init__(self, run_dir: Path | None, purge_step: int | None = None) -> None:
        self.run_dir = run_dir
        self.episodes = self.evals = self.tb = None
        if run_dir is None:
            return
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise QlearnError(f"cannot create run folder {run_dir}: {exc.strerror}") from None
        self.episodes = CsvLog(run_dir / "metrics.csv", EPISODE_FIELDS)
        self.evals = CsvLog(run_dir / "evals.csv", EVAL_FIELDS)
        try:
            from torch.utils.tensorboard import SummaryWriter

            # On resume, TensorBoard hides what the stopped process wrote after its checkpoint (as the CSVs
            # are cut back), so the resumed run's curves have no doubled steps.
            self.tb = SummaryWriter(str(run_dir / "tb"), purge_step=purge_step)
        except ImportError:  # pragma: no cover - tensorboard is a dependency
            self.tb = None

    def episode(self, row: dict[str, Any]) -> None:
        if self.episodes:
            self.episodes.write(row)
        if self.tb:
            s = row["step"]
            self.tb.add_scalar("charts/episodic_return", row["return"], s)
            self.tb.add_scalar("charts/episodic_length", row["length"], s)
            self.tb.add_scalar("charts/epsilon", row["epsilon"], s)
            self.tb.add_scalar("charts/SPS", row["sps"], s)
            if row.get("loss") not in (None, ""):
                self.tb.add_scalar("losses/td_loss", row["loss"], s)

    def evaluation(self, row: dict[str, Any]) -> None:
        if self.evals:
            self.evals.write(row)
        if self.tb:
            self.tb.add_scalar("eval/score", row["score"], row["step"])
            self.tb.add_scalar("eval/success", row["success"], row["step"])

    def close(self) -> None:
        for log in (self.episodes, self.evals):
            if log:
                log.close()
        if self.tb:
            self.tb.close()


def train(agent: Any, env: gym.Env, steps: int = 50_000, *, seed: int = 0, run_dir: str | Path | None = None,
          eval_every: int = 2_000, eval_episodes: int = 50, keep_best: bool = True,
          callbacks: tuple[Callback, ...] | list[Callback] = (), progress: bool = True,
          checkpoint_every: int = 0, resume: dict[str, Any] | None = None) -> TrainResult:
    """Train ``agent`` on ``env`` for ``steps`` environment steps.

    Every ``eval_every`` steps (0: never) the greedy agent is scored (exactly on tabular envs, by ``eval_episodes``
    greedy episodes otherwise); with ``keep_best`` the run ends with the best-scoring agent, so a late
    collapse does not cost the result. With ``run_dir`` set, metrics, TensorBoard scalars and
    checkpoints are written there; with ``checkpoint_every`` also a resumable training checkpoint
    (``resume=`` takes one back, see :mod:`qlearn.training.checkpoint`). Ctrl-C stops cleanly: what was
    learned is saved and returned with ``interrupted=True``.
    """
    if agent.k != 1:
        raise QlearnError(f"train() drives one agent; this one holds K={agent.k}")
    if steps < 1:
        raise QlearnError(f"steps must be >= 1, got {steps}")
    configure_threads()
    run_path = Path(run_dir) if run_dir is not None else None
    env_id = env.spec.id if env.spec else "env"
    logs = _Logs(run_path, purge_step=None if resume is None else int(resume["loop"]["step"]) + 1)
    scorer = Scorer(env, eval_episodes)
    result = TrainResult(agent, run_path, 0, 0, 0.0)
    best_state, best_score = None, -np.inf
    recent: deque[float] = deque(maxlen=100)
    recent_success: deque[float] = deque(maxlen=100)

    diverged: DivergenceError | None = None
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=steps, unit="step", desc=f"{agent.kind} {env_id}", mininterval=0.5, dynamic_ncols=True)

    def evaluate_now(step: int) -> bool:
        nonlocal best_state, best_score
        scores = scorer(agent)
        better = scores["score"] > best_score
        if better:
            best_score = scores["score"]
            best_state = copy.deepcopy(agent.state_dict())
            result.best_score, result.best_step = float(best_score), step
        row = {"step": step, "score": scores["score"], "success": scores["success"], "best_score": best_score}
        result.history.append(row)
        result.final_score = float(scores["score"])
        logs.evaluation(row)
        return all(getattr(cb, "on_eval", lambda _: None)(row) is not False for cb in callbacks)

    def save_checkpoint(step: int) -> None:
        ckpt.save(run_path / ckpt.FILENAME, {
            "agent": agent.state_dict(include_buffer=True), "agent_rng": agent.rng_state(), "env": ckpt.env_state(env),
            "loop": {"step": step, "episode": episode, "obs": obs, "ep_return": ep_return, "ep_len": ep_len,
                     "best_state": best_state, "best_score": best_score, "best_step": result.best_step,
                     "history": result.history, "final_score": result.final_score, "scorer_calls": scorer._calls,
                     "recent": list(recent), "recent_success": list(recent_success)}})

    if resume is None:
        env.action_space.seed(seed)
        obs, _ = env.reset(seed=seed)
        ep_return, ep_len, episode, step = 0.0, 0, 0, 0
    else:
        agent.load_state_dict(resume["agent"])
        agent.set_rng_state(resume["agent_rng"])
        ckpt.set_env_state(env, resume["env"])
        loop = resume["loop"]
        step, episode, obs = loop["step"], loop["episode"], loop["obs"]
        ep_return, ep_len = loop["ep_return"], loop["ep_len"]
        best_state, best_score = loop["best_state"], loop["best_score"]
        result.best_step, result.history, result.final_score = loop["best_step"], loop["history"], loop["final_score"]
        result.best_score = None if best_state is None else float(best_score)
        scorer._calls = loop["scorer_calls"]
        recent.extend(loop["recent"])
        recent_success.extend(loop["recent_success"])
        if bar is not None:
            bar.update(step)
    start, start_step = time.perf_counter(), step
    try:
        while step < steps:
            action = agent.act(np.asarray(obs)[None, None])
            a = int(action[0, 0])
            next_obs, reward, terminated, truncated, _ = env.step(a)
            agent.observe(np.asarray(obs)[None, None], action, np.array([[reward]], dtype=np.float32),
                          np.asarray(next_obs)[None, None], np.array([[terminated]]), np.array([[truncated]]))
            step += 1
            ep_return += float(reward)
            ep_len += 1
            obs = next_obs
            keep_going = True
            if terminated or truncated:
                episode += 1
                win = success_of(env_id, ep_return, terminated, truncated)
                recent.append(ep_return)
                recent_success.append(float(win))
                m = agent.metrics()
                elapsed = time.perf_counter() - start
                row = {"step": step, "episode": episode, "return": ep_return, "length": ep_len,
                       "success": int(win), "epsilon": round(m["epsilon"], 5), "loss": m.get("loss", ""),
                       "sps": round((step - start_step) / max(elapsed, 1e-9), 1)}
                logs.episode(row)
                keep_going = all(getattr(cb, "on_episode", lambda _: None)(row) is not False for cb in callbacks)
                obs, _ = env.reset()
                ep_return, ep_len = 0.0, 0
            if eval_every and (step % eval_every == 0 or step == steps):
                keep_going = evaluate_now(step) and keep_going
            if checkpoint_every and run_path is not None and (step % checkpoint_every == 0 or step == steps):
                save_checkpoint(step)
            if bar is not None and (step % 500 == 0 or step == steps):
                m = agent.metrics()
                bar.update(step - bar.n)
                bar.set_postfix({"ep": episode, "ret100": f"{np.mean(recent):.3g}" if recent else "-",
                                 "eps": f"{m['epsilon']:.3f}", "loss": f"{m['loss']:.3g}" if "loss" in m else "-",
                                 "best": f"{best_score:.3f}" if best_state is not None else "-"}, refresh=False)
            if not keep_going:
                break
    except KeyboardInterrupt:
        result.interrupted = True
    except DivergenceError as exc:
        diverged = exc
        keep_best = True  # never deliver the broken weights
        result.final_score = None
    finally:
        if bar is not None:
            bar.close()
        result.steps, result.episodes = step, episode
        result.wall_time = time.perf_counter() - start
        try:
            if run_path is not None:
                agent.save(run_path / LAST)
            if keep_best and best_state is not None and (result.final_score is None or best_score > result.final_score):
                agent.load_state_dict(best_state)
            result.delivered_score = result.best_score if keep_best else result.final_score
            if run_path is not None:
                agent.save(run_path / AGENT)
                write_json(run_path / "summary.json", result.summary())
        finally:
            logs.close()
            scorer.close()
    if diverged is not None:
        where = f"; the last good agent (score {result.best_score:.3f} at step {result.best_step}) is in " \
                f"{run_path / AGENT}" if run_path is not None and result.best_score is not None else ""
        raise DivergenceError(f"run stopped: {diverged}{where}", diverged.step) from None
    return result
