"""4. History: the seed scan, ``get_run(name)`` and ``latest_run`` over 1,000 and 10,000 runs.

Baselines are the floor under each: one hand-written SQL query through the same engine
(and, for the scan, reading each ``data.json`` with ``json.loads``), no views, no objects.
The scan's answer is checked against the baseline's, so a wrong scan cannot look fast.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterator
from typing import Any

from bench import _pipelines as p
from bench._core import Budget, Figure, Mode, median, paired

SCAN_BUDGET = Budget("<", 0.5, "s")
LOOKUP_BUDGET = Budget("<", 10.0, "ms")
BUDGET_AT = 10_000
CALLS = 20  # lookups per timed sample: single calls are tens of microseconds

SCAN_SQL = """
SELECT a.uri FROM artifacts a
JOIN step_outputs o ON o.artifact_id = a.id
JOIN steps s ON s.id = o.step_id
JOIN runs r ON r.id = s.run_id
JOIN pipelines pl ON pl.id = r.pipeline_id
WHERE pl.name = 'first_pipeline' AND s.name = 'step_2' AND o.name = 'multiplied_output_int'
ORDER BY r.start_time, r.id
"""
GET_RUN_SQL = "SELECT id, name, status, start_time, end_time FROM runs WHERE name = :name"
LATEST_SQL = (
    "SELECT id, name, status, start_time, end_time FROM runs WHERE pipeline_id = :pid "
    "ORDER BY start_time DESC, id DESC LIMIT 1"
)


def _raw_scan(engine: Any) -> int:
    import sqlalchemy as sa

    with engine.connect() as conn:
        uris = conn.execute(sa.text(SCAN_SQL)).scalars().all()
    highest = 0
    for uri in uris:
        with open(os.path.join(uri, "data.json"), "rb") as f:
            highest = max(highest, json.loads(f.read()))
    return highest


def _raw_one(engine: Any, sql: str, **params: Any) -> Callable[[], Any]:
    import sqlalchemy as sa

    stmt = sa.text(sql)

    def go() -> Any:
        with engine.connect() as conn:
            return conn.execute(stmt, params).first()

    return go


def _times(fn: Callable[[], Any]) -> Callable[[], None]:
    def go() -> None:
        for _ in range(CALLS):
            fn()

    return go


def _measure(repo: Any, n: int, mode: Mode) -> dict[str, tuple[list[float], list[float]]]:
    store = repo.active_stack.metadata_store
    engine = store.engine
    history = repo.active_stack.history  # what StepContext.metadata_store is during a run
    expected = _raw_scan(engine)
    got = p.highest_so_far(history)
    if got != expected:
        raise AssertionError(f"seed scan over {n} runs found {got}, the raw query {expected}")
    pipe = history.get_pipeline("first_pipeline")
    names = pipe.get_run_names()
    if len(names) != n:
        raise AssertionError(f"the store holds {len(names)} runs, expected {n}")
    name = names[len(names) // 2]
    if pipe.get_run(name).name != name or pipe.latest_run.name != names[-1]:
        raise AssertionError("get_run/latest_run returned the wrong run")
    scan_repeats = max(3, mode.repeats // 2) if n >= BUDGET_AT else mode.repeats
    return {
        "seed scan": paired(
            lambda: p.highest_so_far(history), lambda: _raw_scan(engine), scan_repeats
        ),
        "get_run(name)": paired(
            _times(lambda: pipe.get_run(name)),
            _times(_raw_one(engine, GET_RUN_SQL, name=name)),
            mode.repeats,
        ),
        "latest_run": paired(
            _times(lambda: pipe.latest_run),
            _times(_raw_one(engine, LATEST_SQL, pid=pipe.id)),
            mode.repeats,
        ),
    }


BASELINES = {
    "seed scan": "1 SQL query + json.loads of each file",
    "get_run(name)": "1 SQL query (text)",
    "latest_run": "1 SQL query (text)",
}


@contextlib.contextmanager
def _repos(mode: Mode, backend: str, rebuild: bool) -> Iterator[Iterator[tuple[int, Any]]]:
    from bench._history_store import server_history, sqlite_history

    if backend == "sqlite":

        def gen() -> Iterator[tuple[int, Any]]:
            for n in mode.history_sizes:
                with sqlite_history(n, rebuild) as repo:
                    yield n, repo

        yield gen()
    else:
        with server_history(backend, mode.history_sizes) as grow:
            yield ((n, grow(n)) for n in mode.history_sizes)


def run(mode: Mode, backend: str = "sqlite", rebuild: bool = False) -> list[Figure]:
    figures: list[Figure] = []
    first: dict[str, tuple[int, float]] = {}
    with _repos(mode, backend, rebuild) as repos:
        for n, repo in repos:
            for what, (s, b) in _measure(repo, n, mode).items():
                per = 1 if what == "seed scan" else CALLS
                s = [x / per for x in s]
                b = [x / per for x in b]
                ts, tb = median(s), median(b)
                scan = what == "seed scan"
                note = f"{backend}"
                if what in first:
                    n0, t0 = first[what]
                    note += f"; x{ts / t0:.2f} the time at N={n0} for x{n / n0:g} the runs"
                else:
                    first[what] = (n, ts)
                if scan:
                    note += f"; {ts / n * 1e6:.0f} us per run"
                figures.append(
                    Figure(
                        "history",
                        f"{what}, N={n:,}",
                        ts if scan else ts * 1e3,
                        "s" if scan else "ms",
                        what,
                        ts,
                        BASELINES[what],
                        tb,
                        ts / tb,
                        s,
                        b,
                        (SCAN_BUDGET if scan else LOOKUP_BUDGET) if n == BUDGET_AT else None,
                        note,
                    )
                )
    return figures
