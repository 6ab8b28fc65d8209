"""examples/sweep/sweep.py runs end to end on the parallel orchestrator (on Ray: test_ray.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import runstack

ROOT = Path(__file__).resolve().parents[1]
SWEEP = ROOT / "examples" / "sweep" / "sweep.py"


def run_sweep(cwd: Path, *args: str) -> str:
    """Run the example in a fresh process; return what it printed."""
    env = {**os.environ, "PYTHONPATH": str(Path(runstack.__file__).resolve().parents[1])}
    done = subprocess.run(
        [sys.executable, str(SWEEP), "--trials", "3", "--epochs", "50", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_the_sweep_runs_on_parallel_and_is_cached_the_second_time(repo, isolated):
    first = run_sweep(isolated, "--orchestrator", "parallel", "--workers", "3")
    assert "best: trial_0 alpha=0.001" in first and "0 of 5 steps cached" in first
    again = run_sweep(isolated, "--orchestrator", "parallel", "--workers", "3")
    assert "5 of 5 steps cached" in again
    run = repo.get_pipeline("sweep").runs[0]
    assert [s.name for s in run.steps][-1] == "pick"
    assert {s.name for s in run.steps} == {"data", "trial_0", "trial_1", "trial_2", "pick"}
    assert all("R^2=" in run.get_step(f"trial_{i}").logs for i in range(3))
