"""Run a sweep on Ray Tune, or resume one: the search, the scheduler, the trials' folders, the summary.

Grid and random search are Tune's variant generator (random: seeded by ``random_seed``); ``optuna`` is
Tune's Optuna integration (TPE, seeded), its study kept in ``optuna.db`` (SQLite) in the sweep folder;
``scheduler: asha`` is Tune's ASHA on the trials' reported ``score`` with env steps per seed as its time.
Tune's own state lives in ``tune/`` in the sweep folder, which is what ``qlearn sweep --resume`` restores:
finished trials stay finished, unfinished ones run again. Each trial may fail twice (a lost node, a
crashed worker) and is then rerun elsewhere; a configuration that cannot train fails once, is reported,
and the sweep goes on.

Every trial's run folders end up under ``trials/TRIAL_ID/`` of the sweep folder: fetched from the node
that ran it through Ray (a task pinned to that node packs its scratch folder) when the trial ends, or,
with ``storage`` (a folder every node shares), written there directly.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from ray.tune import Callback

from qlearn.errors import QlearnError
from qlearn.runs import new_run_dir, versions, write_json
from qlearn.sweep.spec import Sweep, from_dict
from qlearn.sweep.trial import pack, remove, trainable, unpack

MAX_FAILURES = 2
STATE = "sweep.json"


def run_sweep(
    sweep: Sweep,
    *,
    out: str = "runs",
    address: str | None = None,
    num_cpus: int | None = None,
    storage: str | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Run the search into a new sweep folder (under ``storage`` if given, else ``out``); its summary."""
    if storage is not None and "://" in storage:
        raise QlearnError(f"--storage {storage}: give a folder every node of the cluster mounts (not a URI)")
    folder = new_run_dir(storage or out, sweep.env, sweep.agent, "sweep").resolve()
    write_json(folder / STATE, {"sweep": sweep.to_dict(), "storage": storage is not None, "versions": versions()})
    return _tune(folder, sweep, address, num_cpus, storage is not None, progress, restore=False)


def resume_sweep(
    folder: str | os.PathLike, *, address: str | None = None, num_cpus: int | None = None, progress: bool = True
) -> dict[str, Any]:
    """Continue an interrupted sweep in ``folder``: its finished trials are kept, the rest run."""
    import json

    path = Path(folder).resolve()
    state = path / STATE
    if not state.is_file():
        raise QlearnError(f"{path} is not a sweep folder (no {STATE}); give the folder qlearn sweep printed")
    saved = json.loads(state.read_text())
    sweep = from_dict(saved["sweep"], str(state))
    if not (path / "tune" / "search").is_dir():
        raise QlearnError(f"{path} holds no Tune state to resume (tune/search is missing): start the sweep again")
    return _tune(path, sweep, address, num_cpus, bool(saved.get("storage")), progress, restore=True)


def _start_ray(address: str | None, num_cpus: int | None) -> None:
    import ray

    quiet: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.WARNING}
    if address:
        try:
            ray.init(address=address, **quiet)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise QlearnError(
                f"--address {address}: cannot connect to a Ray cluster ({str(exc).splitlines()[0]})"
            ) from None
        return
    # Ray starts its workers at niceness 15: beside any other work at the default 0 a trial then gets a sliver
    # of a core (a 10k-step FrozenLake trial ran 25-40x slower than the same run started directly)
    os.environ.setdefault("RAY_worker_niceness", "0")
    ray.init(  # "local": a new instance of our own, even where another Ray cluster runs on this machine
        address="local",
        num_cpus=num_cpus or os.cpu_count(),
        include_dashboard=False,
        object_store_memory=100 * 1024 * 1024,
        **quiet,
    )


def _tune(
    folder: Path, sweep: Sweep, address: str | None, num_cpus: int | None, shared: bool, progress: bool, restore: bool
) -> dict[str, Any]:
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", "1")  # Tune's state at most 1 s behind: resume redoes little
    import ray
    from ray import tune

    # trials that had not reported when a sweep stopped have no results: said by their status, not as warnings
    logging.getLogger("ray.tune.analysis.experiment_analysis").setLevel(logging.ERROR)
    t0 = time.perf_counter()
    _start_ray(address, num_cpus)
    started = time.perf_counter() - t0
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    job = {**sweep.job(), "sweep_dir": str(folder), "storage": str(folder) if shared else None}
    fn = tune.with_resources(tune.with_parameters(trainable, job=job), {"cpu": sweep.cpus_per_trial})
    collect = Collect(str(folder), fetch=not shared, progress=progress, total=sweep.trials)
    interrupted = False
    try:
        if restore:
            tuner = tune.Tuner.restore(str(folder / "tune" / "search"), trainable=fn, resume_unfinished=True)
        else:
            tuner = tune.Tuner(
                fn,
                param_space={k: p.to_tune() for k, p in sweep.params.items()},
                tune_config=_tune_config(sweep, folder),
                run_config=tune.RunConfig(
                    name="search",
                    storage_path=str(folder / "tune"),
                    callbacks=[collect],
                    failure_config=tune.FailureConfig(max_failures=MAX_FAILURES),
                    verbose=0,
                ),
            )
        t1 = time.perf_counter()
        grid = tuner.fit()
        searched = time.perf_counter() - t1
    except KeyboardInterrupt:
        interrupted, grid, searched = True, None, 0.0
    finally:
        t2 = time.perf_counter()
        ray.shutdown()
        stopped = time.perf_counter() - t2
    from qlearn.sweep.summary import write_summary

    timing = {"ray_start_s": round(started, 2), "search_s": round(searched, 2), "ray_stop_s": round(stopped, 2)}
    summary = write_summary(folder, sweep, grid, timing=timing, nodes=len(nodes))
    summary["interrupted"] = interrupted or summary["unfinished"] > 0
    return summary


def _tune_config(sweep: Sweep, folder: Path) -> Any:
    from ray import tune

    if sweep.search == "optuna":
        import optuna
        from ray.tune.search.optuna import OptunaSearch

        storage = optuna.storages.RDBStorage(f"sqlite:///{folder / 'optuna.db'}")
        search: Any = OptunaSearch(seed=sweep.random_seed, storage=storage, study_name="qlearn")
    else:
        from ray.tune.search.basic_variant import BasicVariantGenerator

        search = BasicVariantGenerator(random_state=sweep.random_seed)
    scheduler = None
    if sweep.scheduler == "asha":
        from ray.tune.schedulers import ASHAScheduler

        steps, every = budget(sweep)
        scheduler = ASHAScheduler(
            time_attr="env_steps",
            max_t=steps + 1,  # never at the last evaluation: the trial's final report comes after it
            grace_period=sweep.asha.get("grace_period", max(every, steps // 9)),
            reduction_factor=sweep.asha.get("reduction_factor", 3),
        )
    return tune.TuneConfig(
        metric="score",
        mode="max",
        search_alg=search,
        scheduler=scheduler,
        num_samples=1 if sweep.search == "grid" else sweep.samples,
    )


def budget(sweep: Sweep) -> tuple[int, int]:
    """Env steps per seed of a trial and its evaluation interval, as the trial's spec will have them."""
    from qlearn.sweep.spec import corners, trial_spec

    spec = trial_spec(sweep.job(), corners(sweep)[0])
    return int(spec.train.steps), int(spec.train.eval_every)


class Collect(Callback):
    """Tune callback on the driver: when a trial ends (finished, stopped early or failed), fetch its folder
    from the node that ran it into ``trials/TRIAL_ID/``; a progress bar over the trials."""

    def __init__(self, folder: str, *, fetch: bool, progress: bool, total: int | None) -> None:
        self.folder, self.fetch, self.progress, self.total = folder, fetch, progress, total
        self.bar: Any = None

    def __getstate__(self) -> dict[str, Any]:  # Tune pickles its callbacks with the experiment's state
        return {**self.__dict__, "bar": None}

    def setup(self, stop: Any = None, num_samples: Any = None, total_num_samples: Any = None, **info: Any) -> None:
        if self.progress and self.bar is None:
            from tqdm.auto import tqdm

            done = len(list((Path(self.folder) / "trials").glob("*")))
            self.bar = tqdm(total=self.total, initial=done, unit="trial", desc="sweep", file=sys.stderr)

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._collect(trial)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._collect(trial)

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def _collect(self, trial: Any) -> None:
        if self.bar is not None:
            self.bar.update(1)
        result = trial.last_result or {}
        src, node = result.get("trial_folder"), result.get("node_id")
        if not self.fetch or not src or not node:
            return
        import ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        on_node = {"num_cpus": 0, "scheduling_strategy": NodeAffinitySchedulingStrategy(node, soft=False)}
        dest = Path(self.folder) / "trials" / trial.trial_id
        try:
            data = ray.get(ray.remote(pack).options(**on_node).remote(src), timeout=300)
        except Exception as exc:  # noqa: BLE001 - a lost node, a timeout: the trial's files are gone with it
            dest.mkdir(parents=True, exist_ok=True)
            (dest / "lost.txt").write_text(f"the trial's folder on node {node} could not be fetched: {exc!r}\n")
            return
        shutil.rmtree(dest, ignore_errors=True)  # an earlier attempt's copy (a trial rerun after a resume)
        unpack(data, dest)
        try:  # waited for: the sweep's last trial ends just before Ray shuts down
            ray.get(ray.remote(remove).options(**on_node).remote(src), timeout=60)
        except Exception:  # noqa: BLE001 - the copy is safe in the sweep folder; a stale scratch folder is all
            pass
