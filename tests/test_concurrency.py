"""Many processes running pipelines against one SQLite repository at once (issue 4).

Real processes, a real SQLite file and real artifact files; nothing is mocked.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from runstack.models import ExecutionStatus
from runstack.repository import Repository

pytestmark = pytest.mark.slow

WORKERS = 8
RUNS_EACH = 25

WORKER = """
import json, os, sys, time
from runstack.exceptions import DuplicateRunNameError
from runstack.pipelines import pipeline
from runstack.steps import BaseStepConfig, step

class Seed(BaseStepConfig):
    worker: int = 0
    i: int = 0

@step(enable_cache=False)
def make(config: Seed) -> list:
    return [config.worker, config.i, list(range(config.i % 5))]

@step
def total(rows: list) -> int:
    return sum(rows[2]) + rows[0] * 1000 + rows[1]

@step(enable_cache=False)
def report(n: int) -> dict:
    print("total", n)
    return {{"n": n}}

@pipeline
def race(make, total, report):
    report(total(make()))

worker, runs, mode = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
while not os.path.exists("go"):
    time.sleep(0.01)
done, taken, errors = [], [], []
for i in range(runs):
    name = f"shared-{{i}}" if mode == "collide" else None
    try:
        r = race(make(worker=worker, i=i), total(), report()).run(run_name=name)
        done.append(r.name)
    except DuplicateRunNameError as e:
        taken.append(str(e))
    except Exception as e:
        errors.append(f"{{type(e).__name__}}: {{e}}")
print(json.dumps({{"done": done, "taken": taken, "errors": errors}}))
"""


def _race(root: Path, runs: int, mode: str) -> list[dict]:
    script = root / "worker.py"
    script.write_text(WORKER.format())
    env = {**os.environ, "RUNSTACK_REPOSITORY": str(root), "RUNSTACK_PROGRESS": "off"}
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(w), str(runs), mode],
            cwd=root,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in range(WORKERS)
    ]
    time.sleep(0.5)  # let them import, then release all at once
    (root / "go").touch()
    results = []
    for p in procs:
        out, err = p.communicate(timeout=240)
        assert p.returncode == 0, err
        assert "database is locked" not in err
        assert "Traceback" not in err, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def test_eight_processes_record_every_run_step_and_artifact(repo: Repository) -> None:
    # The metadata store does not exist yet: the workers also race to create its schema.
    assert not list(repo.config_dir.glob("*.db"))
    results = _race(repo.root, RUNS_EACH, "default")
    assert [r["errors"] for r in results] == [[]] * WORKERS
    names = [n for r in results for n in r["done"]]
    assert len(names) == WORKERS * RUNS_EACH == len(set(names))

    pipe = Repository(repo.root).get_pipeline("race")
    runs = pipe.runs
    assert sorted(r.name for r in runs) == sorted(names)
    for r in runs:
        assert r.status is ExecutionStatus.COMPLETED, (r.name, r.error)
        assert [s.name for s in r.steps] == ["make", "total", "report"]
        assert all(s.status in (ExecutionStatus.COMPLETED, ExecutionStatus.CACHED) for s in r.steps)
    # Every artifact is recorded and readable, and holds what its run computed.
    for r in runs:
        rows = r.get_step("make").output.read()
        n = r.get_step("total").output.read()
        assert n == sum(rows[2]) + rows[0] * 1000 + rows[1]
        assert r.get_step("report").output.read() == {"n": n}
        assert r.get_step("report").logs == f"total {n}\n"
    store = repo.active_stack.metadata_store
    with store.engine.connect() as conn:
        counts = conn.exec_driver_sql(
            "SELECT (SELECT COUNT(*) FROM runs), (SELECT COUNT(*) FROM steps), "
            "(SELECT COUNT(*) FROM artifacts), (SELECT COUNT(*) FROM step_outputs)"
        ).one()
    # make and report always write; total writes only when its input content is new.
    assert counts[0] == 200 and counts[1] == 600 and counts[3] == 600
    assert 400 < counts[2] <= 600


def test_explicit_colliding_run_names_are_unique_under_the_race(repo: Repository) -> None:
    results = _race(repo.root, 5, "collide")
    assert [r["errors"] for r in results] == [[]] * WORKERS
    done = sorted(n for r in results for n in r["done"])
    assert done == [f"shared-{i}" for i in range(5)]  # each name won by exactly one process
    refused = [m for r in results for m in r["taken"]]
    assert len(refused) == WORKERS * 5 - 5
    assert all("already exists" in m and "run_name=" in m for m in refused)
    runs = Repository(repo.root).get_pipeline("race").runs
    assert sorted(r.name for r in runs) == done
    assert all(r.status is ExecutionStatus.COMPLETED for r in runs)
