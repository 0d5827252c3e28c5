"""What a run writes as it goes: per-seed episode and evaluation rows, TensorBoard scalars (one run is K=1).

A many-seed run ends thousands of episodes per step (1,024 agents x 32 FrozenLake envs: ~1,000 a step).
Writing each as a CSV row from Python would cost more than the training itself, so the episodes of a
step are kept as arrays (one ``np.nonzero`` per step, whatever K) and written in bulk: at every
evaluation for up to ``PER_SEED_MAX`` seeds, otherwise when ``FLUSH_SECS`` have passed since the last
write, and always at the end (and before every checkpoint). Each seed folder gets ``metrics.csv`` (one
row per episode) and ``evals.csv``. Per-seed TensorBoard writers (a thread and an open file each) are
made for up to ``PER_SEED_MAX`` seeds: one agent on one env gets every episode's scalars, as CleanRL writes
them; agents on many envs (thousands of episodes a second) the averages since the last evaluation. A
parent folder gets one writer with the seeds' mean, interquartile mean and bootstrap 95% interval of the
evaluation score.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from qlearn.envs.make import success_array
from qlearn.errors import QlearnError
from qlearn.stats import iqm

EPISODE_FIELDS = ["step", "episode", "return", "length", "success", "epsilon", "loss", "sps"]
EVAL_FIELDS = ["step", "score", "success", "best_score", "exact_score", "q_error"]
"""``exact_score`` and ``q_error`` (``max |Q - Q*|``) come from the env's model, where it has one (else empty)."""
PER_SEED_MAX = 64
FLUSH_SECS = 30.0


class RunLogs:
    """Episode and evaluation logs of K seeds, one folder each (``run_dirs``; none: count only)."""

    def __init__(
        self,
        k: int,
        env_id: str,
        run_dirs: list[Path] | None = None,
        parent: Path | None = None,
        purge_step: int | None = None,
        n_envs: int = 1,
    ) -> None:
        self.k, self.env_id = k, env_id
        self.each_episode = k == 1 and n_envs == 1  # TensorBoard: every episode's scalars, else averages
        self.dirs = list(run_dirs or [])
        self.episodes = np.zeros(k, dtype=np.int64)  # episodes ended so far, per seed
        self._rows: list[tuple[Any, ...]] = []  # episode columns of each step with ends, unwritten
        self._evals: list[tuple[int, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
        self._tb_sums = np.zeros((k, 3))  # return, length, count since the last evaluation
        self._last_flush = time.perf_counter()
        for d in self.dirs:
            try:
                d.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise QlearnError(f"cannot create run folder {d}: {exc.strerror}") from None
            for name, fields in (("metrics.csv", EPISODE_FIELDS), ("evals.csv", EVAL_FIELDS)):
                path = d / name
                if not path.exists() or path.stat().st_size == 0:
                    path.write_text(",".join(fields) + "\n")
        # purge_step (a resumed run): TensorBoard hides what a stopped run wrote after its checkpoint
        self._boards = _writers(self.dirs, purge_step) if len(self.dirs) <= PER_SEED_MAX else []
        self._aggregate = _writers([parent], purge_step)[0] if parent is not None else None

    def episodes_ended(
        self,
        step: int,
        done: np.ndarray,
        returns: np.ndarray,
        lengths: np.ndarray,
        terminated: np.ndarray,
        truncated: np.ndarray,
        epsilon: float,
        loss: float | None,
        sps: float,
    ) -> tuple[np.ndarray, ...] | None:
        """Record the episodes that ended at this step (``done`` and the arrays after it are ``[K, N]``)."""
        ki, ni = np.nonzero(done)
        if not len(ki):
            return None
        counts = np.bincount(ki, minlength=self.k)
        first = np.searchsorted(ki, ki)  # np.nonzero lists rows in order, so each seed's ends are adjacent
        number = self.episodes[ki] + np.arange(len(ki)) - first + 1
        self.episodes += counts
        ret, length = returns[ki, ni], lengths[ki, ni]
        np.add.at(self._tb_sums, ki, np.stack([ret, length, np.ones(len(ki))], axis=1))
        success = success_array(self.env_id, ret, terminated[ki, ni], truncated[ki, ni]).astype(np.int64)
        ended = (ki, number, ret, length, success)
        if not self.dirs:
            return ended
        if self.each_episode and self._boards:  # one agent on one env: every episode's scalars
            tb = self._boards[0]
            for r, n_steps in zip(ret.tolist(), length.tolist()):
                tb.add_scalar("charts/episodic_return", r, step)
                tb.add_scalar("charts/episodic_length", n_steps, step)
            tb.add_scalar("charts/epsilon", epsilon, step)
            tb.add_scalar("charts/SPS", sps, step)
            if loss is not None:
                tb.add_scalar("losses/td_loss", loss, step)
        tail = f",{round(epsilon, 5)},{'' if loss is None else loss},{round(sps, 1)}\n"  # the same for the step
        self._rows.append((ki, f"{step},", number, ret, length, success, tail))
        return ended

    def evaluated(
        self,
        step: int,
        scores: np.ndarray,
        success: np.ndarray,
        best: np.ndarray,
        ci95: tuple[float, float] | None,
        sps: float,
        loss: float | None = None,
        epsilon: float | None = None,
        *,
        exact: np.ndarray | None = None,
        q_error: np.ndarray | None = None,
    ) -> None:
        """Record an evaluation of every seed (``ci95``: the bootstrap interval of their mean, None for one
        seed; ``exact``, ``q_error``: what the env's model reports), write TensorBoard scalars, and flush the
        CSVs when due."""
        blank = np.full(self.k, np.nan)
        exact_col = blank if exact is None else np.asarray(exact, dtype=float)
        error_col = blank if q_error is None else np.asarray(q_error, dtype=float)
        self._evals.append((step, scores.copy(), success.copy(), best.copy(), exact_col, error_col))
        ret, length, count = self._tb_sums.T
        for i, tb in enumerate(self._boards):
            tb.add_scalar("eval/score", scores[i], step)
            tb.add_scalar("eval/success", success[i], step)
            if exact is not None:
                tb.add_scalar("eval/exact_score", exact[i], step)
            if q_error is not None:
                tb.add_scalar("eval/q_error", q_error[i], step)
            if self.each_episode:
                continue  # written as the episodes end
            tb.add_scalar("charts/SPS", sps, step)
            if epsilon is not None:
                tb.add_scalar("charts/epsilon", epsilon, step)
            if loss is not None:
                tb.add_scalar("losses/td_loss", loss, step)
            if count[i]:  # episodes since the last evaluation, averaged (every episode is in metrics.csv)
                tb.add_scalar("charts/episodic_return", ret[i] / count[i], step)
                tb.add_scalar("charts/episodic_length", length[i] / count[i], step)
        if self._aggregate is not None and ci95 is not None:
            for tag, val in (
                ("mean", scores.mean()),
                ("iqm", iqm(scores)),
                ("ci95_low", ci95[0]),
                ("ci95_high", ci95[1]),
            ):
                self._aggregate.add_scalar(f"eval/score_{tag}", val, step)
            self._aggregate.add_scalar("charts/SPS", sps * self.k, step)
        self._tb_sums[:] = 0.0
        if len(self.dirs) <= PER_SEED_MAX or time.perf_counter() - self._last_flush >= FLUSH_SECS:
            self.flush()

    def flush(self) -> None:
        """Append the unwritten rows to each seed's CSV files."""
        self._last_flush = time.perf_counter()
        if not self.dirs:
            self._rows.clear()
            self._evals.clear()
            return
        episode_lines = _episode_lines(self._rows, self.k)
        eval_lines: list[list[str]] = [[] for _ in range(self.k)]
        for step, scores, success, best, exact, q_error in self._evals:
            for i, (s, w, b, x, e) in enumerate(zip(scores, success, best, exact, q_error)):
                model = ",".join("" if np.isnan(v) else str(float(v)) for v in (x, e))
                eval_lines[i].append(f"{step},{float(s)},{float(w)},{float(b)},{model}\n")
        for i, d in enumerate(self.dirs):
            for name, lines in (("metrics.csv", episode_lines[i]), ("evals.csv", eval_lines[i])):
                if lines:
                    with open(d / name, "a") as fh:
                        fh.write("".join(lines))
        self._rows.clear()
        self._evals.clear()

    def close(self) -> None:
        self.flush()
        for tb in [*self._boards, *([self._aggregate] if self._aggregate is not None else [])]:
            tb.close()


def _episode_lines(chunks: list[tuple[Any, ...]], k: int) -> list[list[str]]:
    """CSV lines of the collected episode rows, split by seed (each seed's rows in the order they ended).

    Step, epsilon, loss and speed are shared by a step's rows and formatted once per step."""
    lines: list[list[str]] = [[] for _ in range(k)]
    if not chunks:
        return lines
    rows: list[str] = []
    for _, head, number, ret, length, success, tail in chunks:
        rows += [
            f"{head}{a},{b},{c},{d}{tail}"
            for a, b, c, d in zip(number.tolist(), ret.tolist(), length.tolist(), success.tolist())
        ]
    seed = np.concatenate([c[0] for c in chunks])
    order = np.argsort(seed, kind="stable")
    rows = [rows[i] for i in order.tolist()]
    ends = np.cumsum(np.bincount(seed, minlength=k)).tolist()
    for i, (lo, hi) in enumerate(zip([0, *ends[:-1]], ends)):
        lines[i] = rows[lo:hi]
    return lines


def _writers(dirs: list[Path], purge_step: int | None = None) -> list[Any]:
    """One TensorBoard writer per folder (CleanRL's scalar names), none without folders."""
    if not dirs:
        return []
    from torch.utils.tensorboard import SummaryWriter

    return [SummaryWriter(str(d / "tb"), purge_step=purge_step) for d in dirs]
