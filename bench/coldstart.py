"""3. Cold start: importing runstack, defining steps, the CLI's browsing commands and the seed
script, each as a new process.

Each figure is a new Python process timed from outside, minus ``python -c pass`` timed the
same way (interleaved), so interpreter start-up is not counted against runstack; the seed
script's figure is its whole process (import, define, run three steps, exit), as a user
waits for it.

Processes run with bytecode caching on, as an installed package runs (pip writes ``.pyc``
files): with ``PYTHONDONTWRITEBYTECODE`` set, as in some shells and CI images, every process
would compile runstack's own modules from source again, 15-120 ms per command here, which no
user pays. The cache goes to a scratch folder (``PYTHONPYCACHEPREFIX``), never into the tree.
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
CLI_BUDGET = Budget("<=", 150.0, "ms")
DEFINE_BUDGET = Budget("<=", 60.0, "ms")
# What runstack adds to a definition on top of pydantic's own cost (the line above is under
# pydantic's floor on these machines, so it cannot show a regression in runstack's part).
DEFINE_SHARE_BUDGET = Budget("<=", 15.0, "ms")
SEED_BUDGET = Budget("<=", 250.0, "ms")
DEFINE = (
    "import runstack.steps, runstack.pipelines\n"
    "from runstack.steps import BaseStepConfig, step\n"
    "class Config(BaseStepConfig):\n"
    "    multiplier: int = 2\n"
    "@step\n"
    "def scale(config: Config, x: int) -> int:\n"
    "    return config.multiplier * x\n"
)
PYDANTIC_ALONE = (
    "from pydantic import BaseModel, ConfigDict\n"
    "class Config(BaseModel):\n"
    "    model_config = ConfigDict(defer_build=True)\n"
    "    multiplier: int = 2\n"
)
SEED_SCRIPT = """
from runstack.pipelines import pipeline
from runstack.steps import BaseStepConfig, Output, step


class Config(BaseStepConfig):
    multiplier: int = 4


@step
def step_1() -> Output(a=int, b=float):
    return 7, 0.1


@step
def step_2(config: Config, a: int, b: float) -> Output(a=int, b=float):
    return config.multiplier * a, config.multiplier * b


@step(enable_cache=False)
def step_3(a: int) -> bool:
    return a > 0


@pipeline
def first_pipeline(step_1, step_2, step_3):
    a, b = step_1()
    a, b = step_2(a, b)
    step_3(a)


first_pipeline(step_1=step_1(), step_2=step_2(), step_3=step_3()).run()
"""
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


def _import_profile(argv: list[str], env: dict[str, str], top: int = 6) -> str:
    """The slowest imports (cumulative) under ``python -X importtime``: where start-up goes."""
    if argv[0] != sys.executable:  # the console script: the same command through -m
        argv = [sys.executable, "-m", "runstack.cli", *argv[1:]]
    out = subprocess.run(
        [sys.executable, "-X", "importtime", *argv[1:]], env=env, capture_output=True, text=True
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
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(tmp / "pycache")
        seed = tmp / "seed.py"
        seed.write_text(SEED_SCRIPT)
        run_name = subprocess.run(
            [sys.executable, "-c", LIST_EQUIVALENT], env=env, capture_output=True, text=True
        ).stdout.split()[0]
        subjects: dict[str, tuple[list[str], Budget | None, str]] = {
            "import runstack": ([sys.executable, "-c", "import runstack"], IMPORT_BUDGET, ""),
            "import runstack.steps, runstack.pipelines": (
                [sys.executable, "-c", "import runstack.steps, runstack.pipelines"],
                None,
                "",
            ),
            "import + define a step with a BaseStepConfig": (
                [sys.executable, "-c", DEFINE],
                DEFINE_BUDGET,
                "",
            ),
            # The floor under the line above: a BaseStepConfig is a pydantic model.
            "a bare pydantic model (defer_build), no runstack": (
                [sys.executable, "-c", PYDANTIC_ALONE],
                None,
                "the floor under the definitions budget: pydantic's import and one model",
            ),
        }
        for args in (["run", "list"], ["run", "show", run_name], ["pipeline", "list"]):
            cli = [*_cli(), *args]
            label = f"runstack {' '.join(args[:2])}"
            if subprocess.run(cli, env=env, capture_output=True).returncode == 0:
                subjects[label] = (cli, CLI_BUDGET, "3 runs in the store")
            else:
                subjects[label + " (python equivalent)"] = (
                    [sys.executable, "-c", LIST_EQUIVALENT],
                    None,
                    f"`{label}` failed here; timed the same listing through Repository()",
                )
        subjects["runstack stack list"] = ([*_cli(), "stack", "list"], CLI_BUDGET, "")
        subjects["seed script, whole process"] = (
            [sys.executable, str(seed)],
            SEED_BUDGET,
            "import, define, run 3 steps (cache hits after the first), exit; whole process",
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
            slowest = _import_profile(argv, env)
            whole = name.startswith("seed script")
            figures.append(
                Figure(
                    "coldstart",
                    name,
                    (ts if whole else ts - tb) * 1e3,
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
    define, floor = "import + define a step with a BaseStepConfig", "a bare pydantic model"
    ours = next(f for f in figures if f.name == define)
    bare = next(f for f in figures if f.name.startswith(floor))
    figures.append(
        Figure(
            "coldstart",
            "import + define, above a bare pydantic model",
            # Both ran in every round: the median of the per-round differences.
            median([a - b for a, b in zip(ours.raw_subject_s, bare.raw_subject_s, strict=True)])
            * 1e3,
            "ms",
            f"new process: {define}",
            ours.subject_s,
            "a bare pydantic model (defer_build), no runstack",
            bare.subject_s,
            ours.subject_s / bare.subject_s,
            ours.raw_subject_s,
            bare.raw_subject_s,
            DEFINE_SHARE_BUDGET,
            "runstack's own share of a definition: its imports, the step and config classes",
        )
    )
    return figures
