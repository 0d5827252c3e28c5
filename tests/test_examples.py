"""The example scripts run as a user would run them and reach what they claim."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.mark.parametrize("script", ["perceptron.py", "fit_course_table.py"])
def test_example_runs(script, tmp_path):
    proc = subprocess.run([sys.executable, str(EXAMPLES / script)], cwd=tmp_path, capture_output=True, text=True,
                          env={**os.environ, "QLEARN_THREADS": "1", "MPLBACKEND": "Agg"}, timeout=300)
    assert proc.returncode == 0, proc.stderr
    if script == "perceptron.py":
        assert (tmp_path / "perceptron.png").stat().st_size > 1000
    else:
        assert "exact success probability 0.740" in proc.stdout
