"""Checkpoints that survive a SIGKILL, and a resumed run that ends bit for bit like an uninterrupted one."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from helpers import kill_after_checkpoint

from qlearn.agents.base import read_checkpoint
from qlearn.training import checkpoint as ckpt

ENV = {**os.environ, "QLEARN_THREADS": "1", "MPLBACKEND": "Agg"}
SETS = ["--set", "checkpoint_every=1000", "--set", "eval_every=1000", "--set", "learning_starts=300"]


def train_cmd(out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "qlearn", "train", "FrozenLake-v1", "--recipe", "course", "--steps", "8000", "--seed", "11", "--out",
            str(out), "--no-progress", "--no-plots", *SETS, *extra]


def without_sps(path: Path) -> list[str]:
    return [line.rsplit(",", 1)[0] for line in path.read_text().splitlines()]


def test_sigkill_then_resume_matches_an_uninterrupted_run(tmp_path):
    full = subprocess.run(train_cmd(tmp_path / "full"), env=ENV, capture_output=True, text=True, timeout=300)
    assert full.returncode == 0, full.stderr
    (ref,) = (tmp_path / "full").iterdir()

    ck = kill_after_checkpoint(train_cmd(tmp_path / "killed"), tmp_path / "killed", 2000, ENV)
    run = ck.parent
    assert ckpt.load(ck)["loop"]["step"] < 8000  # killed part-way; the checkpoint on disk is complete

    from torch.utils.tensorboard import SummaryWriter

    ghost = SummaryWriter(str(run / "tb"))  # what a process killed later than its checkpoint may have flushed
    for s in range(3000, 9001, 1000):
        ghost.add_scalar("eval/score", -1.0, s)
    ghost.close()
    resumed = subprocess.run([sys.executable, "-m", "qlearn", "train", "--resume", str(run), "--no-progress",
                              "--no-plots"], env=ENV, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    for name in ("agent.pt", "last.pt"):  # the delivered (best) agent and the final one
        a = read_checkpoint(ref / name)["state"]
        b = read_checkpoint(run / name)["state"]
        for part in ("net", "target"):
            for key in a[part]:
                assert torch.equal(a[part][key], b[part][key]), (name, part, key)
        assert a["steps"] == b["steps"] and a["updates"] == b["updates"]
    assert read_checkpoint(run / "last.pt")["state"]["steps"] == 8000
    assert without_sps(ref / "metrics.csv") == without_sps(run / "metrics.csv")
    assert (ref / "evals.csv").read_text() == (run / "evals.csv").read_text()
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run / "tb"))  # what the killed process wrote past its checkpoint is purged
    acc.Reload()
    scalars = acc.Scalars("eval/score")
    assert [e.step for e in scalars] == list(range(1000, 8001, 1000))
    evals = [line.split(",") for line in (run / "evals.csv").read_text().splitlines()[1:]]
    assert [e.value for e in scalars] == pytest.approx([float(row[1]) for row in evals], abs=1e-6)


def test_resume_refuses_finished_corrupt_and_missing(tmp_path):
    done = subprocess.run(train_cmd(tmp_path / "done"), env=ENV, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0
    (run,) = (tmp_path / "done").iterdir()

    def resume(path: Path) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "qlearn", "train", "--resume", str(path)], env=ENV,
                              capture_output=True, text=True, timeout=300)

    for proc, needle in ((resume(run), "already finished"), (resume(tmp_path / "nope"), "does not exist")):
        assert proc.returncode == 2 and "Traceback" not in proc.stderr and needle in proc.stderr, proc.stderr
    if not torch.cuda.is_available():  # a GPU run's checkpoint holds CUDA random state: say so, don't crash
        config = run / "config.json"
        original = config.read_text()
        recorded = json.loads(original)
        config.write_text(json.dumps({**recorded, "device": "cuda", "train": {**recorded["train"], "steps": 9000}}))
        proc = resume(run)
        assert proc.returncode == 2 and "trained on cuda" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
        config.write_text(original)
    data = (run / ckpt.FILENAME).read_bytes()
    (run / ckpt.FILENAME).write_bytes(data[: len(data) // 2])  # truncated
    proc = resume(run)
    assert proc.returncode == 2 and "corrupt" in proc.stderr and "Traceback" not in proc.stderr
    (run / ckpt.FILENAME).write_bytes(b"not a checkpoint at all")
    assert "corrupt" in resume(run).stderr


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    """A failure while writing leaves the previous checkpoint intact and no temporary file behind."""
    path = tmp_path / ckpt.FILENAME

    def payload(step: int) -> dict:
        return {"agent": {}, "agent_rng": {}, "env": [], "loop": {"step": step}}

    ckpt.save(path, payload(1))

    def boom(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ckpt.pickle, "dump", boom)
    from qlearn.errors import QlearnError

    with pytest.raises(QlearnError, match="No space left"):
        ckpt.save(path, payload(2))
    assert ckpt.load(path)["loop"]["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == [ckpt.FILENAME]


def test_config_json_reruns_the_same_run_bit_for_bit(tmp_path):
    first = subprocess.run(train_cmd(tmp_path / "a", "--set", "lr=0.002", "--set", "hidden=32,32",
                                     "--map", "SFFF,FHFH,FFFF,HFFG"), env=ENV, capture_output=True, text=True,
                           timeout=300)
    assert first.returncode == 0, first.stderr
    (run,) = (tmp_path / "a").iterdir()
    again = subprocess.run([sys.executable, "-m", "qlearn", "train", "--config", str(run / "config.json"), "--out",
                            str(tmp_path / "b"), "--no-progress", "--no-plots"], env=ENV, capture_output=True,
                           text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    (run2,) = (tmp_path / "b").iterdir()
    a = read_checkpoint(run / "last.pt")["state"]["net"]
    b = read_checkpoint(run2 / "last.pt")["state"]["net"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert without_sps(run / "metrics.csv") == without_sps(run2 / "metrics.csv")
    # a config from a newer qlearn, and one that is not a config, are refused in one line
    import json

    cfg = json.loads((run / "config.json").read_text())
    cfg["versions"]["qlearn"] = "99.0.0"
    newer = tmp_path / "newer.json"
    newer.write_text(json.dumps(cfg))
    proc = subprocess.run([sys.executable, "-m", "qlearn", "train", "--config", str(newer)], env=ENV,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "newer" in proc.stderr and "Traceback" not in proc.stderr
    cfg["versions"]["qlearn"] = "0.1.0"
    cfg["agent_config"]["learning_rat"] = 0.1
    newer.write_text(json.dumps(cfg))
    proc = subprocess.run([sys.executable, "-m", "qlearn", "train", "--config", str(newer)], env=ENV,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "learning_rat" in proc.stderr


def many_cmd(out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "qlearn", "train", "FrozenLake-v1", "--recipe", "course", "--seeds", "3", "--seed", "4", "--steps", "8000",
            "--out", str(out), "--no-progress", "--no-plots", *SETS, *extra]


def test_seeds_run_killed_then_resumed_matches_an_uninterrupted_one(tmp_path):
    """A --seeds run checkpoints in its parent folder; killed and resumed, every seed ends bit for bit as in the
    uninterrupted run, its logs without doubled rows, and the finished run's checkpoint is removed."""
    full = subprocess.run(many_cmd(tmp_path / "full"), env=ENV, capture_output=True, text=True, timeout=300)
    assert full.returncode == 0, full.stderr
    (ref,) = (tmp_path / "full").iterdir()
    assert not (ref / ckpt.FILENAME).exists()  # finished: no stale replay memories left behind
    found = kill_after_checkpoint(many_cmd(tmp_path / "killed"), tmp_path / "killed", 4000, ENV)
    run = found.parent
    assert not (run / "aggregate.json").exists()
    resumed = subprocess.run([sys.executable, "-m", "qlearn", "train", "--resume", str(run / "seed_5"),
                              "--no-progress", "--no-plots", "--json"], env=ENV, capture_output=True, text=True,
                             timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["run_dir"] == str(run)
    for s in (4, 5, 6):
        a, b = ref / f"seed_{s}", run / f"seed_{s}"
        for name in ("agent.pt", "last.pt"):
            x, y = (read_checkpoint(p / name)["state"] for p in (a, b))
            assert all(torch.equal(x["net"][key], y["net"][key]) for key in x["net"]), (s, name)
            assert x["steps"] == y["steps"] == 8000
        assert without_sps(a / "metrics.csv") == without_sps(b / "metrics.csv")
        assert (a / "evals.csv").read_text() == (b / "evals.csv").read_text()
    agg_a, agg_b = (json.loads((p / "aggregate.json").read_text()) for p in (ref, run))
    assert agg_a["scores"] == agg_b["scores"] and agg_a["curve"] == agg_b["curve"]
    again = subprocess.run([sys.executable, "-m", "qlearn", "train", "--resume", str(run)], env=ENV,
                           capture_output=True, text=True, timeout=300)
    assert again.returncode == 2 and "already finished" in again.stderr and "Traceback" not in again.stderr


def test_ctrl_c_on_a_seeds_run_keeps_its_agents_and_resumes(tmp_path):
    # SIGINT back to its default in the child: a shell's background job (`cmd &`) starts with it ignored,
    # and Python then never raises KeyboardInterrupt.
    proc = subprocess.Popen(many_cmd(tmp_path, "--set", "checkpoint_every=2000", "--steps", "40000"), env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 120
    while time.time() < deadline and not list(tmp_path.glob(f"*/{ckpt.FILENAME}")):
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "interrupted at step" in err and "Traceback" not in err, err
    (run,) = tmp_path.iterdir()
    stopped = json.loads((run / "seed_4" / "summary.json").read_text())
    assert json.loads((run / "aggregate.json").read_text())["interrupted"] and stopped["interrupted"]
    assert 2000 <= stopped["steps"] < 40000 and (run / "seed_4" / "agent.pt").is_file()
    resumed = subprocess.run([sys.executable, "-m", "qlearn", "train", "--resume", str(run), "--no-progress",
                              "--no-plots"], env=ENV, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    done = json.loads((run / "seed_4" / "summary.json").read_text())
    assert done["steps"] == 40000 and not done["interrupted"] and not (run / ckpt.FILENAME).exists()
