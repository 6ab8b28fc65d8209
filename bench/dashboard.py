"""7. Dashboard API: the runs page of a pipeline with 10,000 runs, and a run of 50 steps.

Each is measured twice: in-process through the ASGI test client (the app's own cost) and over
real HTTP against ``runstack up`` running as a separate process (what a browser sees, with a
kept-alive connection). Baselines are the floor under each, the same rows fetched with
hand-written SQL on the same store (for the run page: its row, its steps and their outputs;
for the runs page: the first 50 runs, their step counts and their parameters). Answers are
checked (50 runs, newest first, total = N; 50 steps) so a wrong answer cannot look fast.

The runs page uses the cached history store of the ``history`` benchmark (the seed pipeline,
N runs); the 50-step run is one run of a 50-step linear pipeline in a scratch repository.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from bench import _pipelines as p
from bench._core import Budget, Figure, Mode, median, paired, scratch, using_repository

PAGE_BUDGET = Budget("<=", 50.0, "ms")
RUN_BUDGET = Budget("<=", 30.0, "ms")
BUDGET_AT = 10_000
PAGE = 50
STEPS = 50
CALLS = 5  # requests per timed sample

RUNS_SQL = (
    "SELECT r.id, r.name, r.status, r.start_time, r.end_time FROM runs r "
    "JOIN pipelines p ON p.id = r.pipeline_id WHERE p.name = :pipeline "
    "ORDER BY r.start_time DESC, r.id DESC LIMIT :limit"
)
COUNT_SQL = (
    "SELECT count(*) FROM runs r JOIN pipelines p ON p.id = r.pipeline_id WHERE p.name = :pipeline"
)
STEP_COUNTS_SQL = (
    "SELECT run_id, status, count(*) FROM steps WHERE run_id IN ({ids}) GROUP BY run_id, status"
)
PARAMS_SQL = "SELECT step_id, name, value FROM step_parameters WHERE run_id IN ({ids})"
RUN_SQL = "SELECT id, name, status, start_time, end_time, error FROM runs WHERE name = :name"
STEPS_SQL = "SELECT * FROM steps WHERE run_id = :run ORDER BY position"
OUTPUTS_SQL = (
    "SELECT o.step_id, o.name, a.* FROM step_outputs o JOIN artifacts a ON a.id = o.artifact_id "
    "JOIN steps s ON s.id = o.step_id WHERE s.run_id = :run ORDER BY o.step_id, o.position"
)


def _raw_runs_page(engine: Any, pipeline: str) -> Callable[[], Any]:
    import sqlalchemy as sa

    def go() -> Any:
        with engine.connect() as conn:
            rows = conn.execute(sa.text(RUNS_SQL), {"pipeline": pipeline, "limit": PAGE}).all()
            conn.execute(sa.text(COUNT_SQL), {"pipeline": pipeline}).scalar()
            ids = ",".join(str(r[0]) for r in rows)
            conn.execute(sa.text(STEP_COUNTS_SQL.format(ids=ids))).all()
            conn.execute(sa.text(PARAMS_SQL.format(ids=ids))).all()
        return rows

    return go


def _raw_run(engine: Any, name: str) -> Callable[[], Any]:
    import sqlalchemy as sa

    def go() -> Any:
        with engine.connect() as conn:
            run_id = conn.execute(sa.text(RUN_SQL), {"name": name}).first()[0]
            steps = conn.execute(sa.text(STEPS_SQL), {"run": run_id}).all()
            conn.execute(sa.text(OUTPUTS_SQL), {"run": run_id}).all()
        return steps

    return go


def _times(fn: Callable[[], Any]) -> Callable[[], None]:
    def go() -> None:
        for _ in range(CALLS):
            fn()

    return go


def _checked(
    get: Callable[[str], Any], url: str, check: Callable[[Any], bool]
) -> Callable[[], Any]:
    response = get(url)
    if response.status_code != 200 or not check(response.json()):
        raise AssertionError(f"{url} answered {response.status_code}: {response.text[:300]}")
    return lambda: get(url)


@contextlib.contextmanager
def _served(repo_root: Path) -> Iterator[str]:
    """``runstack up`` on a free port in its own process; yields its base URL."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "RUNSTACK_REPOSITORY": str(repo_root)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "runstack.cli", "up", "--port", "0"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("Press Ctrl-C"):
                break
        else:
            raise RuntimeError(f"runstack up did not start: {''.join(lines)}")
        url = next(w for line in lines for w in line.split() if w.startswith("http://"))
        yield url.rstrip("/")
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def _measure(
    repo: Any,
    engine: Any,
    url: str,
    raw: Callable[[], Any],
    check: Callable[[Any], bool],
    mode: Mode,
) -> dict[str, tuple[list[float], list[float]]]:
    import httpx2 as httpx
    from fastapi.testclient import TestClient

    from runstack.dashboard import create_app, open_source

    source = open_source(repo)
    out = {}
    try:
        with TestClient(create_app(source)) as client:
            call = _checked(client.get, url, check)
            out["in-process (ASGI)"] = paired(_times(call), _times(raw), mode.repeats)
        with _served(repo.root) as base, httpx.Client(base_url=base) as http:
            call = _checked(http.get, url, check)
            out["over HTTP"] = paired(_times(call), _times(raw), mode.repeats)
    finally:
        source.store.dispose()
    return out


def run(mode: Mode, backend: str = "sqlite", rebuild: bool = False) -> list[Figure]:
    from bench._history_store import sqlite_history

    if backend != "sqlite":
        raise ValueError("the dashboard benchmark runs on the cached SQLite history store")
    n = max(mode.history_sizes)
    measured: list[tuple[str, int, Budget | None, str, dict[str, Any]]] = []
    with sqlite_history(n, rebuild) as repo:
        engine = repo.active_stack.metadata_store.engine
        url = f"/api/pipelines/first_pipeline/runs?limit={PAGE}"

        def page_ok(data: Any) -> bool:
            return data["total"] == n and len(data["runs"]) == PAGE

        times = _measure(repo, engine, url, _raw_runs_page(engine, "first_pipeline"), page_ok, mode)
        budget = PAGE_BUDGET if n >= BUDGET_AT else None
        measured.append(
            (f"runs page (first {PAGE} of {n:,} runs)", n, budget, "4 SQL queries (text)", times)
        )
    with scratch("dashboard") as tmp, using_repository(tmp) as repo:
        p.linear_pipeline(STEPS).run(run_name="fifty")
        engine = repo.active_stack.metadata_store.engine

        def run_ok(data: Any) -> bool:
            return len(data["steps"]) == STEPS

        times = _measure(repo, engine, "/api/runs/fifty", _raw_run(engine, "fifty"), run_ok, mode)
        repo.active_stack.metadata_store.dispose()
        measured.append((f"run of {STEPS} steps", STEPS, RUN_BUDGET, "3 SQL queries (text)", times))
    figures = []
    for what, _size, budget, baseline, by_how in measured:
        for how, (s, b) in by_how.items():
            s = [x / CALLS for x in s]
            b = [x / CALLS for x in b]
            ts, tb = median(s), median(b)
            figures.append(
                Figure(
                    "dashboard",
                    f"{what}, {how}",
                    ts * 1e3,
                    "ms",
                    f"GET {how}",
                    ts,
                    baseline,
                    tb,
                    ts / tb,
                    s,
                    b,
                    budget,
                    "sqlite",
                )
            )
    return figures
