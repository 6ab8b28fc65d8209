"""The README's quickstart command works end to end in a fresh folder."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_quickstart_runs_and_prints_the_recorded_history(isolated: Path) -> None:
    env = {**os.environ, "XDG_DATA_HOME": str(isolated / "xdg-data")}
    script = str(ROOT / "examples" / "quickstart.py")
    first = subprocess.run(
        [sys.executable, script], cwd=isolated, env=env, capture_output=True, text=True, check=True
    )
    second = subprocess.run(
        [sys.executable, script, "0.01"],
        cwd=isolated,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "best=True" in first.stdout and "cached=none" in first.stdout
    lines = [ln for ln in second.stdout.splitlines() if ln.startswith("  quickstart-")]
    assert len(lines) == 2
    assert "lr=0.01" in lines[1] and "best=False" in lines[1] and "cached=['importer']" in lines[1]
