"""3. Cold start: importing runstack, and listing runs from the command line, as new processes.

Each figure is a new Python process timed from outside, minus ``python -c pass`` timed the
same way (interleaved), so interpreter start-up is not counted against runstack.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from bench import _pipelines as p
from bench._core import Budget, Figure, Mode, clock, median, scratch, using_repository

IMPORT_BUDGET = Budget("<", 100.0, "ms")
LIST_EQUIVALENT = (
    "from runstack.repository import Repository\n"
    "for pipe in Repository().get_pipelines():\n"
    "    for r in pipe.runs: print(r.name, r.status.value, r.start_time)\n"
)


def _cli() -> list[str]:
    script = Path(sys.executable).with_name("runstack")
    return [str(script)] if script.exists() else [sys.executable, "-m", "runstack.cli"]


def _proc(argv: list[str], env: dict[str, str]) -> float:
    def go() -> None:
        subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    return clock(go)


def _import_profile(code: str, env: dict[str, str], top: int = 6) -> str:
    """The slowest imports (cumulative) under ``python -X importtime``: where start-up goes."""
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code], env=env, capture_output=True, text=True
    ).stderr
    rows = []
    for line in out.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|(\s*)(\S+)", line)
        if m:
            rows.append((int(m.group(2)), len(m.group(3)), m.group(4)))
    rows.sort(reverse=True)
    return ", ".join(f"{name} {us / 1000:.0f}ms" for us, _, name in rows[:top])


def run(mode: Mode, backend: str = "sqlite", rebuild: bool = False) -> list[Figure]:
    figures: list[Figure] = []
    with scratch("coldstart") as tmp, using_repository(tmp):
        for _ in range(3):
            p.linear_pipeline(3).run()
        env = dict(os.environ)
        cli = [*_cli(), "run", "list"]
        cli_ok = subprocess.run(cli, env=env, capture_output=True).returncode == 0
        subjects = {
            "import runstack": ([sys.executable, "-c", "import runstack"], IMPORT_BUDGET, ""),
            "import runstack.steps, runstack.pipelines": (
                [sys.executable, "-c", "import runstack.steps, runstack.pipelines"],
                None,
                "",
            ),
        }
        if cli_ok:
            subjects["runstack run list"] = (cli, None, "3 runs in the store")
        else:
            subjects["run list (python equivalent)"] = (
                [sys.executable, "-c", LIST_EQUIVALENT],
                None,
                "`runstack run list` failed here; timed the same listing through Repository()",
            )
        baseline = [sys.executable, "-c", "pass"]
        times: dict[str, list[float]] = {k: [] for k in subjects}
        base: list[float] = []
        _proc(baseline, env)  # warm the OS file cache for every command once
        for argv, _, _ in subjects.values():
            _proc(argv, env)
        for _ in range(mode.process_repeats):
            base.append(_proc(baseline, env))
            for name, (argv, _, _) in subjects.items():
                times[name].append(_proc(argv, env))
        tb = median(base)
        for name, (argv, budget, note) in subjects.items():
            ts = median(times[name])
            code = argv[-1] if argv[0] == sys.executable else "from runstack.cli import main"
            slowest = _import_profile(
                code if "import" in code else "import runstack.repository", env
            )
            figures.append(
                Figure(
                    "coldstart",
                    name,
                    (ts - tb) * 1e3,
                    "ms",
                    f"new process: {name}",
                    ts,
                    "python -c pass",
                    tb,
                    ts / tb,
                    times[name],
                    base,
                    budget,
                    "; ".join(x for x in (note, f"slowest imports: {slowest}") if x),
                )
            )
    return figures
