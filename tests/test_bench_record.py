"""Benchmarks as data: bench/record.py stamps and round-trips rows; BENCHMARKS.md is generated from them."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


record = _load("record", ROOT / "bench" / "record.py")
bench_tables = _load("bench_tables", ROOT / "scripts" / "bench_tables.py")


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A one-commit git repository with a tracked file and a bench/results folder."""
    r = tmp_path / "repo"
    (r / "bench" / "results").mkdir(parents=True)
    (r / "code.py").write_text("x = 1\n")
    (r / "bench" / "results" / "old.jsonl").write_text("{}\n")
    _git(r, "init", "-q")
    _git(r, "add", ".")
    _git(r, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "init")
    return r


def test_stamp_has_commit_dirty_date_machine_versions(repo: Path):
    record._fixed.cache_clear()
    st = record.stamp(repo)
    assert st["commit"] == _git(repo, "rev-parse", "HEAD") and len(st["commit"]) == 40
    assert st["dirty"] is False
    assert st["date"].startswith("20") and "T" in st["date"]
    assert {"hostname", "platform", "cpu", "cores", "gpu"} <= set(st["machine"])
    assert st["machine"]["cores"] >= 1
    for key in ("python", "torch", "numpy", "gymnasium", "qlearn"):
        assert key in st["versions"]
    assert st["versions"]["python"].count(".") == 2
    assert "command" in st


def test_dirty_counts_tracked_files_but_not_results_or_untracked(repo: Path):
    (repo / "bench" / "results" / "old.jsonl").write_text("{}\n{}\n")  # a benchmark appending rows
    (repo / "new_untracked.py").write_text("")
    assert record.commit_of(repo)[1] is False
    (repo / "code.py").write_text("x = 2\n")
    assert record.commit_of(repo)[1] is True


def test_without_git_the_commit_comes_from_the_environment(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("QLEARN_COMMIT", "abc123")
    monkeypatch.setenv("QLEARN_DIRTY", "0")
    assert record.commit_of(tmp_path) == ("abc123", False)
    monkeypatch.delenv("QLEARN_COMMIT")
    monkeypatch.delenv("QLEARN_DIRTY")
    assert record.commit_of(tmp_path) == ("unknown", None)


def test_append_read_round_trip(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("QLEARN_BENCH_RESULTS", str(tmp_path / "results"))
    rows = [{"env": "FrozenLake-v1", "seed": 0, "wall": 1.5, "scores": [0.74, 0.73]}, {"env": "CartPole-v1", "seed": 1}]
    path = record.append("demo", rows)
    assert path == tmp_path / "results" / "demo.jsonl"
    record.append("demo", [{"env": "MountainCar-v0", "seed": 2}])  # appends, never rewrites
    record.append("demo", [])
    back = record.read("demo")
    assert [{k: r[k] for k in row} for r, row in zip(back, rows + [{"env": "MountainCar-v0", "seed": 2}])] == \
        rows + [{"env": "MountainCar-v0", "seed": 2}]
    stamp_keys = {"commit", "dirty", "date", "machine", "versions", "command"}
    for r in back:
        assert stamp_keys <= set(r) and r["bench"] == "demo"
    assert len(path.read_text().splitlines()) == 3
    assert all(json.loads(line)["bench"] == "demo" for line in path.read_text().splitlines())
    assert record.read("missing") == []


def test_append_to_an_explicit_file_and_the_options(tmp_path: Path):
    import argparse

    ap = argparse.ArgumentParser()
    record.add_arguments(ap)
    args = ap.parse_args(["--json", str(tmp_path / "x.jsonl")])
    record.recorder("demo", args)([{"a": 1}])
    assert record.read("demo", tmp_path / "x.jsonl")[0]["a"] == 1
    quiet = ap.parse_args(["--no-record", "--json", str(tmp_path / "y.jsonl")])
    record.recorder("demo", quiet)([{"a": 1}])
    assert not (tmp_path / "y.jsonl").exists()


def test_tables_fill_markers_and_keep_prose(tmp_path: Path):
    rows = [{"commit": "a" * 40, "dirty": False, "date": "2026-01-01T00:00:00+00:00",
             "machine": {"hostname": "h", "platform": "p", "cpu": "c", "cores": 2, "gpu": None},
             "versions": {"python": "3.11.7"}, "command": "x", "bench": "step_time",
             "hidden": [64, 64], "k": 1, "batch": 64, "numpy_ms": 0.2, "torch_ms": 0.6}]
    results = tmp_path / "results"
    results.mkdir()
    (results / "step_time.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    doc = tmp_path / "B.md"
    doc.write_text("prose before\n<!-- table:step_time -->\nstale\n<!-- /table:step_time -->\nprose after\n")
    argv = ["--file", str(doc), "--results", str(results)]
    assert bench_tables.main(argv + ["--check"]) == 1
    assert bench_tables.main(argv) == 0
    text = doc.read_text()
    assert text.startswith("prose before\n") and text.endswith("prose after\n") and "stale" not in text
    assert "| 64x64 | 1 | 64 | 0.20 | 0.60 | 3.0x |" in text and "`aaaaaaa`" in text and "2026-01-01" in text
    assert bench_tables.main(argv + ["--check"]) == 0
    rows.append({**rows[0], "commit": "b" * 40, "numpy_ms": 0.3})  # a re-run: the newest row wins
    (results / "step_time.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert bench_tables.main(argv + ["--check"]) == 1
    bench_tables.main(argv)
    assert "| 64x64 | 1 | 64 | 0.30 | 0.60 | 2.0x |" in doc.read_text() and "`bbbbbbb`" in doc.read_text()


def test_benchmarks_md_is_generated_from_the_committed_results():
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "bench_tables.py"), "--check"],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    text = (ROOT / "BENCHMARKS.md").read_text()
    assert text.count("<!-- table:") == len(bench_tables.TABLES)


def test_every_results_file_is_one_benchmarks_stamped_rows():
    files = sorted((ROOT / "bench" / "results").iterdir())
    assert files and all(p.suffix == ".jsonl" for p in files), [p.name for p in files]
    for p in files:
        for r in record.read(p.stem, p):
            assert r["bench"] == p.stem
            assert {"commit", "date", "machine", "versions"} <= set(r)
