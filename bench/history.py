"""4. History: the seed scan, ``get_run(name)`` and ``latest_run`` over 100 to 100,000 runs.

Baselines are the floor under each: one hand-written SQL query through the same engine
(and, for the scan, ``json.loads`` of each value: inline in the row, else its ``data.json``),
no views, no objects. The scan's answer is checked against the baseline's, so a wrong scan
cannot look fast. At the smallest history the fixed cost of browsing is timed too: a new
``Repository()``, its history and the first query. On a server backend the 10,000-run scan is
also timed on SQLite in the same session, for the "within 2x of SQLite" budget.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterator
from typing import Any

from bench import _pipelines as p
from bench._core import Budget, Figure, Mode, median, paired, scratch

SCAN_BUDGET = Budget("<=", 0.1, "s")
LOOKUP_BUDGET = Budget("<=", 1.0, "ms")  # at every N: an index lookup each
OPEN_BUDGET = Budget("<=", 20.0, "ms")
SMALL_SCAN_BUDGET = Budget("<=", 25.0, "ms")
SERVER_RATIO_BUDGET = Budget("<=", 2.0, "x")
FILE_FLOOR_BUDGET = Budget("<", 1.0, "x")  # issue 15: the scan beats reading 10,000 files
BUDGET_AT = 10_000
SMALL = 100
CALLS = 20  # lookups per timed sample: single calls are tens of microseconds

SCAN_SQL = """
SELECT a.uri, a.inline_data FROM artifacts a
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
        rows = conn.execute(sa.text(SCAN_SQL)).all()
    highest = 0
    for uri, inline in rows:
        if inline is None:
            with open(os.path.join(uri, "data.json"), "rb") as f:
                inline = f.read()
        highest = max(highest, json.loads(inline))
    return highest


def _file_floor(engine: Any, folder: Any) -> Callable[[], int]:
    """What the scan would cost with every value in a file of its own (as before values were
    kept inline): the same query, then each value read from ``<folder>/<i>/data.json`` and
    decoded. Issue 15 asks the scan to beat this."""
    import sqlalchemy as sa

    with engine.connect() as conn:
        values = [json.loads(v) for _, v in conn.execute(sa.text(SCAN_SQL)).all()]
    paths = []
    for i, value in enumerate(values):
        os.makedirs(os.path.join(folder, str(i)))
        path = os.path.join(folder, str(i), "data.json")
        with open(path, "w") as f:
            f.write(json.dumps(value))
        paths.append(path)

    # The query a files-only design would run: the artifacts in order, no inline bytes.
    ids_sql = sa.text(SCAN_SQL.replace("SELECT a.uri, a.inline_data", "SELECT a.id"))

    def go() -> int:
        with engine.connect() as conn:
            rows = conn.execute(ids_sql).all()
        highest = 0
        for path, _row in zip(paths, rows, strict=True):
            with open(path, "rb") as f:
                highest = max(highest, json.loads(f.read()))
        return highest

    return go


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


def _open_and_scan(path: Any) -> int:
    """What a script browsing history does from nothing: find the repository, scan."""
    from runstack.repository import Repository

    return p.highest_so_far(Repository(path).get_history())


def _open(path: Any) -> Any:
    from runstack.repository import Repository

    return Repository(path).get_pipeline("first_pipeline").get_runs(limit=1, newest_first=True)


def _raw_open(engine: Any) -> Callable[[], Any]:
    """The floor under opening: one query on an engine already open."""
    return _raw_one(engine, LATEST_SQL.replace(":pid", "1"))


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
    found: dict[str, tuple[list[float], list[float]]] = {}
    if n == SMALL:
        path = repo.config_dir
        found["open: Repository() + first query"] = paired(
            lambda: _open(path), _raw_open(engine), mode.repeats
        )
        found["open + seed scan"] = paired(
            lambda: _open_and_scan(path), lambda: _raw_scan(engine), mode.repeats
        )
    if n == BUDGET_AT:
        with scratch("history-files") as folder:
            floor = _file_floor(engine, folder)
            if floor() != expected:
                raise AssertionError("the file floor read other values than the scan")
            found["seed scan vs files"] = paired(
                lambda: p.highest_so_far(history), floor, scan_repeats
            )
    return found | {
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
    "seed scan": "1 SQL query + json.loads of each value (inline, else its file)",
    "open + seed scan": "1 SQL query + json.loads of each value, engine open",
    "open: Repository() + first query": "1 SQL query (text), engine open",
    "seed scan on SQLite": "the same scan on SQLite, same N, same session",
    "seed scan vs files": "1 SQL query + each value read from a file of its own",
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
        # 100,000 runs on a server only with --full: copying them takes minutes there.
        sizes = tuple(n for n in mode.history_sizes if n <= BUDGET_AT or mode.name == "full")
        with server_history(backend, sizes) as grow:
            yield ((n, grow(n)) for n in sizes)


PER_CALL = ("get_run(name)", "latest_run")  # timed CALLS times per sample


def _budget(what: str, n: int, backend: str) -> Budget | None:
    if what in PER_CALL:
        return LOOKUP_BUDGET
    if what == "seed scan":
        # Issue 15: <= 100 ms on the embedded default; a server's scan is held to within 2x
        # of SQLite's, timed in the same session ("seed scan vs SQLite", below).
        return SCAN_BUDGET if n == BUDGET_AT and backend == "sqlite" else None
    if what == "seed scan vs files":
        return FILE_FLOOR_BUDGET
    if what == "open + seed scan":
        return SMALL_SCAN_BUDGET
    if what == "open: Repository() + first query":
        return OPEN_BUDGET
    return None


def _sqlite_scan(n: int, rebuild: bool, repeats: int) -> list[float]:
    from bench._history_store import sqlite_history

    with sqlite_history(n, rebuild) as repo:
        history = repo.active_stack.history
        p.highest_so_far(history)
        return paired(lambda: p.highest_so_far(history), lambda: None, repeats)[0]


def run(mode: Mode, backend: str = "sqlite", rebuild: bool = False) -> list[Figure]:
    figures: list[Figure] = []
    first: dict[str, tuple[int, float]] = {}
    with _repos(mode, backend, rebuild) as repos:
        for n, repo in repos:
            for what, (s, b) in _measure(repo, n, mode).items():
                per = CALLS if what in PER_CALL else 1
                s = [x / per for x in s]
                b = [x / per for x in b]
                ts, tb = median(s), median(b)
                in_s = what == "seed scan"
                ratio = what == "seed scan vs files"
                note = f"{backend}"
                if what in first:
                    n0, t0 = first[what]
                    note += f"; x{ts / t0:.2f} the time at N={n0:,} for x{n / n0:g} the runs"
                else:
                    first[what] = (n, ts)
                if "scan" in what:
                    note += f"; {ts / n * 1e6:.1f} us per run"
                figures.append(
                    Figure(
                        "history",
                        f"{what}, N={n:,}",
                        ts / tb if ratio else ts if in_s else ts * 1e3,
                        "x" if ratio else "s" if in_s else "ms",
                        what,
                        ts,
                        BASELINES[what],
                        tb,
                        ts / tb,
                        s,
                        b,
                        _budget(what, n, backend),
                        note,
                    )
                )
                if backend != "sqlite" and in_s and n == min(BUDGET_AT, max(mode.history_sizes)):
                    lite = _sqlite_scan(n, rebuild, len(s))
                    tl = median(lite)
                    figures.append(
                        Figure(
                            "history",
                            f"seed scan vs SQLite, N={n:,}",
                            ts / tl,
                            "x",
                            f"seed scan on {backend}",
                            ts,
                            BASELINES["seed scan on SQLite"],
                            tl,
                            ts / tl,
                            s,
                            lite,
                            SERVER_RATIO_BUDGET if n == BUDGET_AT else None,
                            f"{backend} / sqlite, same session",
                        )
                    )
    return figures
