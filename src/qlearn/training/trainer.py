"""The one trainer: K agents x N environments, for every kind of run.

A single run is K=1, N=1 on a Gymnasium env (:class:`~qlearn.envs.vector.SingleEnv`); ``--envs N``,
``--seeds K``, native batched envs and Gymnasium vector envs, CPU and GPU all go through
:class:`Trainer`. Per step: the agents act on ``[K, N]`` observations, the batched env steps (resetting
ended envs in the same step), the agents observe the transitions and train when due, each on its own
schedule (replay-based learners every few steps, PQN at the end of each rollout). Every ``eval_every``
env steps the :class:`Scorer` scores each agent and, with ``keep_best``, each agent's best weights so
far are kept. Every ``checkpoint_every`` steps a checkpoint of everything (agents with replay memory,
streams, envs, this loop) is written, from which :meth:`Trainer.run` resumes bit for bit on the CPU.
Hooks (``on_episode``, ``on_eval``; either may return ``False`` to stop, as the stop rules of
:mod:`qlearn.training.stopping` do) are how callers, benchmarks included, watch or end a run.

Divergence is per agent: an agent whose loss or Q-values stop being finite is frozen by the agent with
its last good weights (:mod:`qlearn.agents.guard`), reported in its summary and the aggregate, and the
others train on. When every agent is frozen the run stops, delivers, and raises
:class:`~qlearn.errors.DivergenceError`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from qlearn.errors import DivergenceError, QlearnError
from qlearn.stats import bootstrap_ci
from qlearn.threads import configure_threads
from qlearn.training import checkpoint as ckpt
from qlearn.training.delivery import KeepBest, deliver
from qlearn.training.logs import RunLogs
from qlearn.training.result import TrainResult
from qlearn.training.scoring import Scorer, as_numpy, on_gpu, single_scorer


class Trainer:
    """Train ``agent`` (K stacked agents) on ``venv`` (K x N envs) for ``steps`` env steps per agent."""

    def __init__(
        self,
        agent: Any,
        venv: Any,
        steps: int,
        *,
        env_id: str,
        scorer: Scorer | None,
        eval_every: int = 2_000,
        keep_best: bool = True,
        run_dirs: Sequence[Path] = (),
        parent: Path | None = None,
        checkpoint_every: int = 0,
        checkpoint_path: Path | None = None,
        keep_final_checkpoint: bool = False,
        hooks: Sequence[Any] = (),
        progress: bool = True,
    ) -> None:
        if agent.k != venv.k:
            raise QlearnError(f"the agent holds K={agent.k} agents but the env batch has K={venv.k}")
        if steps < 1:
            raise QlearnError(f"steps must be >= 1, got {steps}")
        if checkpoint_every and checkpoint_path is None:
            raise QlearnError("checkpoints need a folder: give a run folder, or checkpoint_every=0")
        self.agent, self.venv, self.steps, self.env_id = agent, venv, int(steps), env_id
        self.scorer, self.eval_every, self.keep_best = scorer, int(eval_every), keep_best
        self.run_dirs, self.parent = [Path(d) for d in run_dirs], parent
        self.checkpoint_every, self.checkpoint_path = int(checkpoint_every), checkpoint_path
        self.keep_final_checkpoint = keep_final_checkpoint
        self.hooks, self.progress = list(hooks), progress
        self.k, self.n = venv.k, venv.n
        self.total = math.ceil(self.steps / self.n) * self.n  # whole steps of all N envs
        if hasattr(agent, "plan"):  # schedules over the run's length (PQN's epsilon and learning rate)
            agent.plan(self.total)
        self.result = TrainResult(agent, n_envs=self.n)
        self.best = KeepBest(agent)

    # ------------------------------------------------------------------ the loop
    def run(self, resume: dict[str, Any] | None = None) -> TrainResult:
        """Train to the end (or a hook's stop, Ctrl-C, or every agent diverging); deliver; return the result.
        ``resume``: a loaded checkpoint of this same run, continued exactly where it was written."""
        configure_threads()
        agent, venv, res = self.agent, self.venv, self.result
        k, n = self.k, self.n
        purge = None if resume is None else int(resume["loop"]["step"]) + 1  # TensorBoard: drop what follows
        self.logs = RunLogs(k, self.env_id, self.run_dirs, self.parent, purge_step=purge, n_envs=n)
        self.ep_ret, self.ep_len = np.zeros((k, n)), np.zeros((k, n), dtype=np.int64)
        self.step, self.next_eval, self.spent = 0, self.eval_every, 0.0
        try:
            obs = venv.reset() if resume is None else self._restore(resume)
        except BaseException:
            self.logs.close()
            raise
        self.start = time.perf_counter()
        gpu = on_gpu(agent, venv)
        learning_signals = getattr(venv, "learning_signals", lambda: None)
        bar = self._bar()
        diverged: DivergenceError | None = None
        try:
            while self.step < self.total:
                o = obs if gpu else as_numpy(obs)
                actions = agent.act(o)
                obs, reward, term, trunc, final = venv.step(actions)
                r, te, tr = as_numpy(reward), as_numpy(term), as_numpy(trunc)
                self.obs = obs
                if gpu:
                    agent.observe(o, actions, reward, final, term, trunc)
                elif (signals := learning_signals()) is not None:  # a pixel protocol: clipped rewards, lives
                    agent.observe(o, actions, signals[0], as_numpy(final), te | signals[1], tr, episode_end=te | tr)
                else:
                    agent.observe(o, actions, r, as_numpy(final), te, tr)
                self.step += n
                go = self._account(r, te, tr)
                if self.eval_every and (self.step >= self.next_eval or self.step >= self.total):
                    go = self._evaluate() and go
                    self.next_eval += self.eval_every
                if (
                    self.checkpoint_every
                    and self.step < self.total
                    and self.step // self.checkpoint_every > (self.step - n) // self.checkpoint_every
                ):
                    self._checkpoint()
                if bar is not None and (self.step % (500 * n) < n or self.step >= self.total):
                    self._show(bar)
                if not go:
                    break
        except KeyboardInterrupt:
            res.interrupted = True
        except DivergenceError as exc:  # every agent frozen (in observe, after the env stepped): nothing left to train
            diverged = exc
            self.step += n
        finally:
            if bar is not None:
                bar.close()
        try:
            if self.eval_every and (not res.eval_steps or res.eval_steps[-1] != self.step):
                self._evaluate(hooks=False)  # stopped between evaluations: score the end
        finally:
            self.logs.close()
        try:
            self._finish()  # may score the delivered agents on fresh episodes
        finally:
            if self.scorer is not None:
                self.scorer.close()
        if diverged is not None:
            where = ""
            if res.run_dir is not None:
                where = f"; the last good agent is in {res.run_dir / 'agent.pt'}"
                if res.best_score is not None:
                    where = (
                        f"; the last good agent (score {res.best_score:.3f} at step {res.best_step}) is in "
                        f"{res.run_dir / 'agent.pt'}"
                    )
            raise DivergenceError(f"run stopped: {diverged}{where}", diverged.step) from None
        return res

    def _account(self, r: np.ndarray, te: np.ndarray, tr: np.ndarray) -> bool:
        """Episode returns and lengths; log the episodes that ended; their hooks. False: a hook said stop."""
        self.ep_ret += r
        self.ep_len += 1
        done = te | tr
        if not done.any():
            return True
        m = self.agent.metrics()
        ended = self.logs.episodes_ended(
            self.step, done, self.ep_ret, self.ep_len, te, tr, m["epsilon"], m.get("loss"), self._sps()
        )
        self.ep_ret[done] = 0.0
        self.ep_len[done] = 0
        go = True
        if ended is not None and any(hasattr(h, "on_episode") for h in self.hooks):
            seeds = getattr(self.agent, "seeds", range(self.k))
            for ki, number, ret, length, success in zip(*(x.tolist() for x in ended)):
                row = {
                    "step": self.step,
                    "episode": number,
                    "return": ret,
                    "length": length,
                    "success": success,
                    "seed": int(seeds[ki]),
                    "epsilon": m["epsilon"],
                    "loss": m.get("loss"),
                }
                go = all([h.on_episode(row) is not False for h in self.hooks if hasattr(h, "on_episode")]) and go
        return go

    def _sps(self) -> float:
        return (self.step - self._step0) / max(time.perf_counter() - self.start, 1e-9)

    def _evaluate(self, hooks: bool = True) -> bool:
        """Score every agent, keep the best, log; the hooks' verdict (False: stop)."""
        res = self.result
        if self.scorer is None:
            return True
        scores = self.scorer(self.agent)
        self.best.update(scores.score, self.step, scores.lower)
        ci = bootstrap_ci(scores.score, seed=len(res.eval_steps)) if self.k > 1 else None
        res.record_eval(self.step, scores, ci)
        m = self.agent.metrics()
        logged = (scores.score, scores.success, self.best.scores, ci, self._sps(), m.get("loss"), m["epsilon"])
        self.logs.evaluated(self.step, *logged, exact=scores.exact_score, q_error=scores.q_error)
        if not hooks or not any(hasattr(h, "on_eval") for h in self.hooks):
            return True
        row = {
            "step": self.step,
            "score": float(scores.score.mean()),
            "scores": scores.score,
            "success": float(scores.success.mean()),
            "best_score": float(self.best.scores.max()),
            "best_scores": self.best.scores.copy(),
            "lower": scores.lower,
            "train_time": self.training_seconds(),
            "scoring_time": self.scorer.seconds,
        }
        stops = [h for h in self.hooks if hasattr(h, "on_eval") and h.on_eval(row) is False]
        if stops:
            res.stopped_by = getattr(stops[0], "reason", None) or type(stops[0]).__name__
        return not stops

    def training_seconds(self) -> float:
        """Seconds of this run so far, the time spent scoring excluded (what time-to-threshold counts)."""
        scoring = self.scorer.seconds if self.scorer is not None else 0.0
        return self.spent + time.perf_counter() - self.start - scoring

    # ------------------------------------------------------------ checkpoints
    def _checkpoint(self) -> None:
        self.logs.flush()  # every row up to this step is on disk before the checkpoint says so
        assert self.checkpoint_path is not None  # (checkpoint_every needs one: __init__)
        ckpt.save(self.checkpoint_path, ckpt.capture(self))

    def _restore(self, payload: dict[str, Any]) -> Any:
        """Put a checkpoint's state back (:func:`~qlearn.training.checkpoint.restore`); the next observation."""
        return ckpt.restore(self, payload)

    # ------------------------------------------------------------- the end
    def _finish(self) -> None:
        res = self.result
        finished = (
            not res.interrupted
            and self.step >= self.total
            and self.checkpoint_path is not None
            and self.checkpoint_every > 0
        )
        if finished and self.keep_final_checkpoint:
            self._checkpoint()  # a finished lone run can be extended: more steps in config.json, then --resume
        res.wall_time = self.spent + time.perf_counter() - self.start
        res.steps = self.step
        res.episodes = self.logs.episodes.copy()
        res.best_scores, res.best_steps = self.best.scores.copy(), self.best.steps.copy()
        res.final_scores = res.eval_scores[-1] if res.eval_scores else np.full(self.k, np.nan)
        frozen_at = getattr(getattr(self.agent, "guard", None), "frozen_at", np.full(self.k, -1))
        seeds = getattr(self.agent, "seeds", range(self.k))
        res.diverged = {int(s): int(t) for s, t in zip(seeds, frozen_at) if t >= 0}
        res.parent = self.parent
        deliver(self.agent, res, self.best, self.keep_best, self.run_dirs, self.scorer)
        if self.parent is not None:
            from qlearn.runs import write_json

            aggregate = res.aggregate()
            write_json(self.parent / "aggregate.json", aggregate)
            with open(self.parent / "aggregate_curve.csv", "w") as fh:
                fh.write("step,mean,ci95_low,ci95_high\n")
                for row in aggregate["curve"]:
                    lo, hi = row["ci95"] if row["ci95"] is not None else ("", "")
                    fh.write(f"{row['step']},{row['mean']},{lo},{hi}\n")
        if finished and not self.keep_final_checkpoint and self.checkpoint_path is not None:  # (finished: never None)
            self.checkpoint_path.unlink(missing_ok=True)  # a finished group's (replay memories of K agents): gone

    # ------------------------------------------------------------ progress
    def _bar(self) -> Any:
        self._step0 = self.step
        if not self.progress:
            return None
        from tqdm.auto import tqdm

        what = f"{self.agent.kind} {self.env_id}" if self.k == 1 else f"{self.agent.kind} x{self.k} seeds {self.env_id}"
        return tqdm(total=self.total, initial=self.step, unit="step", desc=what, mininterval=0.5, dynamic_ncols=True)

    def _show(self, bar: Any) -> None:
        bar.update(self.step - bar.n)
        m = self.agent.metrics()
        res = self.result
        last = res.eval_scores[-1] if res.eval_scores else None
        post: dict[str, str | int] = {
            "eps": f"{m['epsilon']:.3f}",
            "loss": f"{m['loss']:.3g}" if m.get("loss") is not None else "-",
            "score": f"{last.mean():.3f}" if last is not None else "-",
        }
        frozen = getattr(getattr(self.agent, "guard", None), "frozen", None)
        if frozen is not None and frozen.any():
            post["diverged"] = int(frozen.sum())
        bar.set_postfix(post, refresh=False)


# ------------------------------------------------------------------ entry points
def train(
    agent: Any,
    env: Any,
    steps: int = 50_000,
    *,
    seed: int = 0,
    run_dir: str | Path | None = None,
    eval_every: int = 2_000,
    eval_episodes: int = 50,
    keep_best: bool = True,
    callbacks: Sequence[Any] = (),
    progress: bool = True,
    checkpoint_every: int = 0,
    resume: dict[str, Any] | None = None,
    select_by: str = "episodes",
) -> TrainResult:
    """Train one agent (K=1) on one Gymnasium env for ``steps`` environment steps.

    Every ``eval_every`` steps (0: never) the greedy agent is scored by ``eval_episodes`` greedy episodes on
    evaluation envs of its own (the env's model, where it has one, reports the exact score beside them;
    ``select_by="model"``: the exact score chooses instead, :mod:`~qlearn.training.scoring`); with ``keep_best`` the run
    delivers the best-scoring weights, so a late collapse does not cost the result. With ``run_dir``,
    metrics, TensorBoard scalars and the agents are written there, and with ``checkpoint_every`` a
    resumable checkpoint (``resume=``: that file, loaded). ``callbacks``: hooks with ``on_episode(row)``
    and/or ``on_eval(row)``, either returning False to stop. Ctrl-C stops cleanly with what was learned.
    """
    from qlearn.envs.vector import SingleEnv

    if agent.k != 1:
        raise QlearnError(f"train() drives one agent; this one holds K={agent.k}: use train_many")
    if steps < 1:
        raise QlearnError(f"steps must be >= 1, got {steps}")
    run_path = Path(run_dir) if run_dir is not None else None
    venv = SingleEnv(env, seed)
    scorer = single_scorer(env, seed, eval_episodes, select_by) if eval_every else None
    trainer = Trainer(
        agent,
        venv,
        steps,
        env_id=env.spec.id if env.spec else "env",
        scorer=scorer,
        eval_every=eval_every,
        keep_best=keep_best,
        run_dirs=[run_path] if run_path else [],
        checkpoint_every=checkpoint_every if run_path else 0,
        checkpoint_path=run_path / ckpt.FILENAME if run_path else None,
        keep_final_checkpoint=True,
        hooks=callbacks,
        progress=progress,
    )
    return trainer.run(resume)


def train_many(
    agent: Any,
    venv: Any,
    steps: int,
    *,
    env_id: str,
    eval_env: Any = None,
    eval_every: int = 2_000,
    eval_episodes: int = 20,
    keep_best: bool = True,
    run_dirs: Sequence[Path] | None = None,
    progress: bool = True,
    aggregate_dir: Path | None = None,
    checkpoint_every: int = 0,
    resume: dict[str, Any] | None = None,
    hooks: Sequence[Any] = (),
    select_by: str | None = None,
) -> TrainResult:
    """Train K agents on a batched env of K x N environments for ``steps`` environment steps per agent.

    Agents are scored on ``eval_env`` (K x episodes envs), a tabular native env's model (its ``.mdp``)
    reporting exact scores beside them; with ``select_by="model"`` (the default without ``eval_env``) the
    model scores alone.
    With ``run_dirs`` (one per agent) each gets a run folder; ``aggregate_dir`` gets TensorBoard scalars
    of the seeds together, ``aggregate.json`` and, every ``checkpoint_every`` env steps,
    ``checkpoint.pkl``, from which ``resume=`` (that file, loaded) continues exactly.
    """
    mdp = getattr(venv, "mdp", None)
    exact_only = mdp is not None and (select_by or ("model" if eval_env is None else "episodes")) == "model"
    if eval_every and not exact_only and eval_env is None:
        raise QlearnError("sampled scoring needs eval_env (a batched env with K x eval_episodes envs)")
    if checkpoint_every and aggregate_dir is None:
        raise QlearnError("checkpoints of a many-seed run go to aggregate_dir: give one, or checkpoint_every=0")
    scorer = Scorer(env_id, mdp=mdp, eval_env=None if exact_only else eval_env) if eval_every else None
    trainer = Trainer(
        agent,
        venv,
        steps,
        env_id=env_id,
        scorer=scorer,
        eval_every=eval_every,
        keep_best=keep_best,
        run_dirs=run_dirs or [],
        parent=aggregate_dir,
        checkpoint_every=checkpoint_every,
        checkpoint_path=aggregate_dir / ckpt.FILENAME if aggregate_dir is not None else None,
        hooks=hooks,
        progress=progress,
    )
    return trainer.run(resume)
