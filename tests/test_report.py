"""The HTML report, opened in a real headless browser (Debian's Chromium, started by the test)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ENV = {**{k: v for k, v in os.environ.items() if k != "DISPLAY"}, "QLEARN_THREADS": "1", "MPLBACKEND": "Agg"}
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = Path(os.environ.get("QLEARN_ARTIFACTS", Path(__file__).resolve().parents[1] / "test-artifacts"))
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def qlearn(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "qlearn", *args], capture_output=True, text=True, env=ENV,
                          timeout=300)


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory) -> list[Path]:
    out = tmp_path_factory.mktemp("runs")
    runs = []
    for agent in ("dqn", "tabular"):
        proc = qlearn("train", "FrozenLake-v1", "--agent", agent, "--steps", "3000", "--out", str(out),
                      "--set", "eval_every=1000", "--no-progress", "--json")
        assert proc.returncode == 0, proc.stderr
        runs.append(Path(__import__("json").loads(proc.stdout)["run_dir"]))
    return runs


def test_report_is_self_contained(two_runs, tmp_path):
    out = tmp_path / "report.html"
    proc = qlearn("report", *map(str, two_runs), "--out", str(out), "--episodes", "20")
    assert proc.returncode == 0, proc.stderr
    text = out.read_text()
    assert "http://" not in text and "https://" not in text  # nothing to fetch
    assert text.count("data:image/png;base64,") >= 4 and "data:image/gif;base64," in text
    assert "Side by side" in text and "tabular" in text and "95% CI" in text


def test_report_shows_the_value_error_and_how_the_agent_was_chosen(two_runs, tmp_path):
    import json

    proc = qlearn("report", str(two_runs[1]), "--out", str(tmp_path / "one.html"), "--episodes", "5", "--json")
    assert proc.returncode == 0, proc.stderr
    err = json.loads(proc.stdout)["evaluations"][0]["value_error"]
    summary = json.loads((two_runs[1] / "summary.json").read_text())
    assert err["states_compared"] == 11 and abs(err["max_abs_diff"] - summary["q_error"]) < 1e-9
    text = __import__("html").unescape((tmp_path / "one.html").read_text())
    assert f"max |Q - Q*| {err['max_abs_diff']:.4f}" in text and "the env's model, where it has one, only reports" in text


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (.ci/run installs Debian's chromium)")
def test_report_renders_in_headless_chromium(two_runs, tmp_path):
    out = tmp_path / "report.html"
    assert qlearn("report", *map(str, two_runs), "--out", str(out), "--episodes", "20").returncode == 0
    profile = tmp_path / "profile"
    dom = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "--virtual-time-budget=5000",
                          "--dump-dom", out.as_uri()], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    figures = re.search(r'data-figures="(\d+)/(\d+)"', dom.stdout)
    assert figures, "the page's load handler did not run"
    shown, total = map(int, figures.groups())
    assert total >= 6 and shown == total, f"{shown} of {total} figures decoded"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "report.png"
    subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "--window-size=1200,2400",
                    f"--screenshot={shot}", out.as_uri()], capture_output=True, timeout=120, check=True)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
