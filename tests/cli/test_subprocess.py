"""The installed ``runstack`` command, run for real: one session per command group.

Kept few on purpose (each start costs a Python interpreter); the click-runner tests cover the
details.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(sys.executable).with_name("runstack")


def runstack(
    *args: str, cwd: Path, code: int = 0, module: bool = False
) -> subprocess.CompletedProcess:
    """Run the console script (or ``python -m runstack.cli``) in ``cwd``."""
    command = [sys.executable, "-m", "runstack.cli"] if module else [str(SCRIPT)]
    env = {**os.environ, "RUNSTACK_PROGRESS": "auto", "COLUMNS": "200"}
    env.pop("RUNSTACK_REPOSITORY", None)
    done = subprocess.run(
        [*command, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == code, (args, done.stdout, done.stderr)
    return done


@pytest.fixture(autouse=True)
def _needs_script() -> None:
    if not SCRIPT.exists():
        pytest.skip(f"the runstack console script is not installed next to {sys.executable}")


def test_help_is_fast_to_import_and_init_and_version_work(isolated: Path):
    heavy = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, runstack.cli; "
            "print(sorted({'sqlalchemy', 'rich', 'pandas', 'numpy', 'pydantic', 'yaml', "
            "'alembic', 'fsspec'} & {m.split('.')[0] for m in sys.modules}))",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert heavy.stdout.strip() == "[]", "importing the CLI must stay light"
    assert "Usage: runstack" in runstack("--help", cwd=isolated).stdout
    assert runstack("version", cwd=isolated, module=True).stdout.strip().startswith("runstack ")
    assert "Created a runstack repository" in runstack("init", cwd=isolated).stdout


def test_stack_and_component_groups(isolated: Path):
    runstack("init", cwd=isolated)
    runstack(
        "metadata-store", "register", "team", "-f", "postgresql", "password=hunter2", cwd=isolated
    )
    runstack("stack", "register", "team", "-o", "local", "-m", "team", "-a", "local", cwd=isolated)
    shown = runstack("stack", "describe", "team", cwd=isolated).stdout
    assert "team" in shown and "hunter2" not in shown
    stacks = json.loads(runstack("stack", "list", "--json", cwd=isolated).stdout)
    assert [s["name"] for s in stacks] == ["default", "team"]
    failed = runstack("stack", "delete", "default", cwd=isolated, code=1)
    assert failed.stderr.startswith("Error: Stack 'default' is active")
    assert "Traceback" not in failed.stderr


def test_pipeline_run_then_browse_with_run_step_and_artifact(isolated: Path, pipeline_file):
    runstack("init", cwd=isolated)
    (isolated / "cfg.yaml").write_text("steps:\n  load:\n    parameters: {rows: 5}\n")
    ran = runstack(
        "pipeline", "run", pipeline_file.name, "-c", "cfg.yaml", "--run-name", "r1", cwd=isolated
    )
    assert "Run r1 of pipeline training completed" in ran.stdout
    assert "✓ load: done in" in ran.stderr  # not a terminal: plain progress lines on stderr
    pipelines = json.loads(runstack("pipeline", "list", "--json", cwd=isolated).stdout)
    assert [p["name"] for p in pipelines] == ["training"]
    assert "r1" in runstack("run", "list", cwd=isolated).stdout
    step = json.loads(runstack("step", "show", "r1", "load", "--json", cwd=isolated).stdout)
    assert step["parameters"] == {"rows": 5}
    preview = runstack("artifact", "read", "r1", "load", "-n", "2", cwd=isolated).stdout
    assert "shape (5, 2)" in preview and "3 more rows" in preview
