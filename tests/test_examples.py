"""The example scripts run as a user would run them and reach what they claim."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


EXPECT = {
    "perceptron.py": "y: [-7. -5. -3. -1.  1.  3.  5.]",
    "fit_course_table.py": "exact success probability 0.740",
    "replay_and_update.py": "345 training steps after the warm-up",
    "dqn_vs_tabular.py": "policy on the lake",
    "mountaincar.py": "value and policy over (position, velocity)",
}


@pytest.mark.parametrize("script", list(EXPECT))
def test_example_runs(script, tmp_path):
    """Every tutorial script runs (``--quick`` where it trains) and prints what the tutorial says."""
    proc = subprocess.run([sys.executable, str(EXAMPLES / script), "--quick"], cwd=tmp_path, capture_output=True,
                          text=True, env={**os.environ, "QLEARN_THREADS": "1", "MPLBACKEND": "Agg"}, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert EXPECT[script] in proc.stdout, proc.stdout
    if script == "perceptron.py":
        assert (tmp_path / "perceptron.png").stat().st_size > 1000
    if script == "mountaincar.py":
        assert (tmp_path / "mountaincar_dqn.png").is_file() and (tmp_path / "mountaincar_tabular.png").is_file()
