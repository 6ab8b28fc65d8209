"""The benchmark suite still runs: its smallest mode, one benchmark, writes the JSON it promises.

Behaviour only; no timing is asserted (machines are noisy; the suite reports, tests check).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_quick_overhead_benchmark_writes_json(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    env = {**os.environ, "RUNSTACK_PROGRESS": "off"}
    env.pop("RUNSTACK_REPOSITORY", None)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "--quick",
            "--only",
            "overhead",
            "--plain",
            "--json",
            str(out),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = json.loads(out.read_text())
    assert doc["schema"] == 1
    assert doc["errors"] == {}
    assert {"started_at", "mode", "backend", "commit", "cpus", "loadavg_start"} <= set(doc["meta"])
    assert doc["meta"]["mode"] == "quick"
    names = [f["name"] for f in doc["figures"]]
    assert "per-step overhead, 20-step pipeline" in names
    for fig in doc["figures"]:
        assert fig["benchmark"] == "overhead"
        assert {"figure", "unit", "subject_s", "baseline_s", "ratio", "status"} <= set(fig)
        assert len(fig["raw_subject_s"]) == len(fig["raw_baseline_s"]) >= 3
        assert fig["subject_s"] > 0
    budgeted = [f for f in doc["figures"] if f["budget"] is not None]
    assert budgeted and all(f["status"] in ("PASS", "MISS") for f in budgeted)
    assert set(doc["budgets"]) == {f"overhead: {f['name']}" for f in budgeted}
    assert "per-step overhead" in proc.stdout  # the table was printed
