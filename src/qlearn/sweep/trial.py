"""One trial of a sweep, as Ray Tune runs it: a configuration's seeds trained in lockstep in one process.

The trial is ``qlearn train --seeds K`` (:func:`qlearn.training.runner.run` on a lockstep spec) with one
more trainer hook, :class:`TuneReport`, which reports every evaluation to Tune (the score ASHA compares
at each rung) with env steps per seed as the time attribute. The trial writes its run folders into a
scratch folder of the node it runs on (``$QLEARN_SWEEP_SCRATCH``, else the system's temp folder, then the
node's id): the driver fetches that folder through Ray when the trial ends (:func:`pack`), so a run's
files reach the sweep folder on a cluster whose nodes share no disk.

A trial runs at niceness 0 where it may (Ray starts its workers at 15) and with as many torch threads
as it holds CPUs: either one wrong made small-network trials crawl while other work ran.

The score of a trial is the IQM across seeds with a bootstrap 95% interval; a diverged seed counts as a
failure: it scores the worst evaluation score the trial saw, rather than leaving a gap.
"""

from __future__ import annotations

import io
import os
import shutil
import tarfile
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np

from qlearn.stats import bootstrap_ci, iqm

SCRATCH_ENV = "QLEARN_SWEEP_SCRATCH"


def node_scratch(node_id: str) -> Path:
    """This node's scratch folder for trials."""
    root = os.environ.get(SCRATCH_ENV) or os.path.join(tempfile.gettempdir(), "qlearn-sweep")
    return Path(root) / node_id[:16]


def normal_priority() -> int:
    """Run this trial at niceness 0 where allowed (Ray starts workers at 15, which starves them beside any
    other work); the niceness it runs at (a cluster started without ``RAY_worker_niceness=0`` and no right
    to raise priority keeps 15: the summary shows it)."""
    try:
        if os.getpriority(os.PRIO_PROCESS, 0) > 0:
            os.setpriority(os.PRIO_PROCESS, 0, 0)
    except (OSError, AttributeError):  # not permitted, or no such call on this platform
        pass
    try:
        return os.getpriority(os.PRIO_PROCESS, 0)
    except (OSError, AttributeError):
        return 0


def seed_scores(scores: np.ndarray, diverged: list[int], floor: float) -> np.ndarray:
    """Per-seed scores with the diverged seeds (their indices) set to ``floor``: failures, not gaps."""
    out = np.asarray(scores, dtype=float).copy()
    out[[i for i in diverged if i < len(out)]] = floor
    out[~np.isfinite(out)] = floor
    return out


def score_row(values: np.ndarray, step: int, **extra: Any) -> dict[str, Any]:
    """The metrics Tune gets: IQM across seeds (``score``) with its bootstrap 95% interval, the mean."""
    lo, hi = bootstrap_ci(values, stat=iqm, seed=0) if len(values) > 1 else (float(values[0]),) * 2
    return {
        "score": float(iqm(values)),
        "score_low": float(lo),
        "score_high": float(hi),
        "score_mean": float(np.mean(values)),
        "env_steps": int(step),
        **extra,
    }


class TuneReport:
    """Trainer hook: each evaluation's scores to Tune, which may end the trial at any report (ASHA). The
    evaluation at the end of the budget is not reported: the trial's final report (the delivered agents'
    scores) comes in its place, so a scheduler's verdict there cannot cut off the run's last steps.

    ``report`` False (a sweep without a scheduler): evaluations are only watched (the worst score, for a
    diverged seed), not reported. Each report is a round trip to the driver that the trial waits for, about
    a tenth of a short FrozenLake trial's training time (``report_wait_s`` in its final report)."""

    def __init__(self, where: dict[str, Any], steps: int, report: bool = True) -> None:
        self.where, self.steps, self.report = where, steps, report
        self.worst = float("inf")
        self.waited = 0.0  # seconds spent in tune.report (a round trip to the driver each time)

    def on_eval(self, row: dict[str, Any]) -> bool:
        from ray import tune

        scores = np.asarray(row["scores"], dtype=float)
        finite = scores[np.isfinite(scores)]
        if len(finite):
            self.worst = min(self.worst, float(finite.min()))
        if row["step"] >= self.steps or not self.report:
            return True
        floor = self.worst if np.isfinite(self.worst) else 0.0
        t = time.perf_counter()
        tune.report(score_row(seed_scores(scores, [], floor), row["step"], final=False, **self.where))
        self.waited += time.perf_counter() - t
        return True


def trainable(config: dict[str, Any], job: dict[str, Any]) -> None:
    """Tune's function trainable: train ``job``'s seeds with ``config``'s settings, report, end. Torch and
    BLAS get as many threads as the trial holds CPUs (one by default), whatever ``$QLEARN_THREADS`` the
    worker inherited: more threads than CPUs is what made small-network trials crawl on a busy machine."""
    os.environ["QLEARN_THREADS"] = str(max(1, int(job.get("cpus", 1))))
    nice = normal_priority()
    import ray
    from ray import tune

    from qlearn.errors import QlearnError
    from qlearn.sweep.spec import trial_spec
    from qlearn.training.runner import run

    node = ray.get_runtime_context().get_node_id()
    trial_id = tune.get_context().get_trial_id()
    if job.get("storage"):
        folder = Path(job["storage"]) / "trials" / trial_id
    else:
        folder = node_scratch(node) / Path(job["sweep_dir"]).name / trial_id
    shutil.rmtree(folder, ignore_errors=True)  # an earlier attempt of this trial (a resumed or retried one)
    folder.mkdir(parents=True)
    where = {"node_id": node, "trial_folder": str(folder), "nice": nice}
    try:
        spec = trial_spec(job, config)
        hook = TuneReport(where, spec.train.steps, report=bool(job.get("report_evals", True)))
        res = run(spec, out=str(folder), progress=False, hooks=[hook], command="qlearn sweep (a trial)")
    except (QlearnError, FloatingPointError, RuntimeError, ValueError) as exc:
        # a configuration that cannot train is a failed trial, reported, not retried (Tune retries crashes)
        (folder / "error.txt").write_text(traceback.format_exc())
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        tune.report({"score": float("nan"), "env_steps": 0, "final": True, "error": message, **where})
        return
    scores = res.delivered_scores if res.delivered_scores is not None else np.full(len(job["seeds"]), np.nan)
    seeds = [int(s) for s in job["seeds"]]
    diverged = [seeds.index(s) for s in res.diverged if s in seeds]
    floor = hook.worst if np.isfinite(hook.worst) else float(np.nanmin(scores)) if np.isfinite(scores).any() else 0.0
    final = seed_scores(scores, diverged, floor)
    tune.report(
        score_row(
            final, res.steps, final=True, scores=[float(x) for x in final], diverged=len(diverged),
            sps=round(res.sps, 1), train_wall=round(res.wall_time, 3), report_wait_s=round(hook.waited, 3),
            run_dir=str(res.parent.relative_to(folder)) if res.parent is not None else "", **where,
        )
    )  # fmt: skip


def pack(folder: str) -> bytes:
    """A trial's folder on this node as a gzipped tar (what the driver unpacks into the sweep folder)."""
    buf = io.BytesIO()
    path = Path(folder)
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        if path.is_dir():
            for child in sorted(path.iterdir()):
                tar.add(child, arcname=child.name)
    return buf.getvalue()


def remove(folder: str) -> None:
    """Drop a trial's scratch folder once the driver holds its copy (and the sweep's, once empty)."""
    shutil.rmtree(folder, ignore_errors=True)
    for empty in (Path(folder).parent, Path(folder).parent.parent):  # the sweep's, the node's
        try:
            empty.rmdir()
        except OSError:  # other trials still there
            return


def unpack(data: bytes, dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        tar.extractall(dest, filter="data")
