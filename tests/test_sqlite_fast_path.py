"""SQLite's writes skip SQLAlchemy (Core and the engine's connections); they must store
exactly what Core would, on connections set up as the engine's are."""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Callable
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from runstack.metadata_stores import SQLMetadataStore
from runstack.metadata_stores import _schema as t
from runstack.metadata_stores._inserts import SQLiteInserts
from runstack.metadata_stores._rows import (
    ARTIFACT_NAMES,
    NUMBERED,
    RUN_NAMES,
    STEP_NAMES,
    TABLE_COLUMNS,
    sqlite_columns,
)
from runstack.models import ExecutionStatus, NewArtifact, StepResult


def _result(run_id: int, name: str) -> StepResult:
    when = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=timezone.utc)
    return StepResult(
        run_id=run_id,
        name=name,
        entrypoint_name="train",
        position=1,
        status=ExecutionStatus.COMPLETED,
        parameters={"lr": 0.1, "layers": [64, 32], "name": "ünï", "none": None},
        start_time=when,
        end_time=when,
        cache_key="k" * 64,
        cache_components={"code": {"step": "abc"}, "bounds": [math.inf, -math.inf, math.nan]},
        execution={"options": {"timeout": None}, "attempts": []},
        inputs={"data": 1},
        new_outputs=(
            NewArtifact("model", "/a/model", "builtins.dict", "m.M", "h" * 32),
            NewArtifact(
                "small",
                "/a/small",
                "builtins.float",
                "m.F",
                None,
                "pickle",
                b"\x00\xff",
                {"data.pkl": 2, "ü": 0},
            ),
        ),
        output_order=("model", "small"),
        parent_step_names=("load",),
        role="trainer",
        error=None,
        traceback=None,
    )


def _input_artifact(store: SQLMetadataStore, run_id: int) -> None:
    """Artifact #1, the input of the steps of ``_result``."""
    when = datetime(2026, 1, 2, tzinfo=timezone.utc)
    data = NewArtifact("data", "/a/data", "builtins.int", "m.I")
    load = StepResult(
        run_id, "load", "load", 0, ExecutionStatus.COMPLETED, {}, when, when, new_outputs=(data,)
    )
    assert store.record_step(load)[1]["data"].id == 1


def _stored_rows(store: SQLMetadataStore, step_id: int) -> list[tuple[object, ...]]:
    with store.engine.connect() as conn:
        step = conn.execute(sa.select(t.steps).where(t.steps.c.id == step_id)).one()
        raw = conn.exec_driver_sql("SELECT * FROM steps WHERE id = ?", (step_id,)).one()
        params = conn.execute(
            sa.select(t.step_parameters.c.name, t.step_parameters.c.value)
            .where(t.step_parameters.c.step_id == step_id)
            .order_by(t.step_parameters.c.name)
        ).all()
        artifacts = conn.exec_driver_sql(
            "SELECT * FROM artifacts WHERE producer_step_id = ? ORDER BY id", (step_id,)
        ).all()
        links = [
            conn.exec_driver_sql(
                f"SELECT name, position, artifact_id FROM {link} WHERE step_id = ? ORDER BY name",
                (step_id,),
            ).all()
            for link in ("step_inputs", "step_outputs")
        ]
    # Everything but the ids, as SQLAlchemy reads it and as SQLite holds it on disk.
    return [
        tuple(step)[2:],
        tuple(raw)[2:],
        *[tuple(p) for p in params],
        *[tuple(a)[1:4] + tuple(a)[5:] for a in artifacts],  # (not the producer's id)
        [(n, p) for n, p, _ in links[0]],
        [(n, p) for n, p, _ in links[1]],
    ]


def test_fast_path_stores_what_core_stores(tmp_path: Path) -> None:
    store = SQLMetadataStore(f"sqlite:///{tmp_path / 'm.db'}")
    run = store.create_run("p", "r", datetime.now(timezone.utc))
    _input_artifact(store, run.id)
    fast_id, fast_outputs = store.record_step(_result(run.id, "a"))
    fast_path, store._sqlite_inserts = store._sqlite_inserts, None  # force SQLAlchemy Core
    core_id, core_outputs = store.record_step(_result(run.id, "b"))
    store._sqlite_inserts = fast_path

    fast_rows, core_rows = _stored_rows(store, fast_id), _stored_rows(store, core_id)
    assert fast_rows[0][0] == "a" and core_rows[0][0] == "b"
    assert fast_rows[0][1:] == core_rows[0][1:]  # decoded values
    assert fast_rows[1][1:] == core_rows[1][1:]  # bytes on disk
    assert fast_rows[2:] == core_rows[2:]  # parameter index rows, artifacts, links
    assert len(fast_rows) == 2 + 4 + 2 + 2
    assert store.get_step_by_id(fast_id).start_time == store.get_step_by_id(core_id).start_time
    assert fast_outputs["model"].uri == core_outputs["model"].uri == "/a/model"
    links = store.outputs_of_steps([fast_id, core_id])
    assert [(link.step_id, link.name) for link in links] == [
        (fast_id, "model"),
        (fast_id, "small"),
        (core_id, "model"),
        (core_id, "small"),
    ]
    assert links[1].artifact.inline == links[3].artifact.inline == b"\x00\xff"
    assert math.isnan(store.get_step_by_id(fast_id).cache_components["bounds"][2])
    store.dispose()


def test_fast_path_starts_and_finishes_runs_as_core_does(tmp_path: Path) -> None:
    store = SQLMetadataStore(f"sqlite:///{tmp_path / 'm.db'}")
    when = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=timezone.utc)

    def start_and_finish(name: str, pipeline: str) -> int:
        run = store.create_run(
            pipeline, name, when, owner_host="h", owner_pid=7, owner_ns="ns", tags={"k": "ü"}
        )
        store.finish_run(run.id, ExecutionStatus.FAILED, when, error="boom")
        return run.id

    fast_ids = [start_and_finish("a", "p"), start_and_finish("b", "p")]  # new, then found
    fast_path, store._sqlite_inserts = store._sqlite_inserts, None  # force SQLAlchemy Core
    core_ids = [start_and_finish("c", "q"), start_and_finish("d", "q")]
    store._sqlite_inserts = fast_path

    def stored(run_id: int) -> tuple[object, ...]:
        with store.engine.connect() as conn:
            raw = conn.exec_driver_sql("SELECT * FROM runs WHERE id = ?", (run_id,)).one()
            tags = conn.exec_driver_sql(
                "SELECT key, value FROM run_tags WHERE run_id = ?", (run_id,)
            ).all()
        # Everything but the ids, the pipeline and the name, as SQLite holds it on disk.
        return (*tuple(raw)[3:], *map(tuple, tags))

    assert [stored(i) for i in fast_ids] == [stored(i) for i in core_ids]
    runs = {r.name: r for r in store.list_runs()}
    assert runs["a"].pipeline_id == runs["b"].pipeline_id != runs["c"].pipeline_id
    assert runs["c"].pipeline_id == runs["d"].pipeline_id
    store.dispose()


def test_a_failing_fast_write_leaves_nothing_behind(tmp_path: Path) -> None:
    store = SQLMetadataStore(f"sqlite:///{tmp_path / 'm.db'}")
    run = store.create_run("p", "r", datetime.now(timezone.utc))
    store.record_step(_result(run.id, "a"))
    try:
        store.record_step(_result(run.id, "a"))  # (run, name) is unique: the INSERT fails
    except Exception as e:
        assert "UNIQUE" in str(e)
    else:
        raise AssertionError("a duplicate step was recorded")
    with store.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(t.artifacts)).scalar() == 2
    store.dispose()


def test_touch_run_beats_only_for_running_runs_on_both_paths(tmp_path: Path) -> None:
    store = SQLMetadataStore(f"sqlite:///{tmp_path / 'm.db'}")
    when = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=timezone.utc)
    fast_path = store._sqlite_inserts
    for inserts in (fast_path, None):
        store._sqlite_inserts = inserts
        run = store.create_run("p", f"r{inserts is None}", when)
        assert store.touch_run(run.id, when + timedelta(seconds=30)) is True
        assert store.get_run_by_id(run.id).heartbeat_at == when + timedelta(seconds=30)
        store.finish_run(run.id, ExecutionStatus.COMPLETED, when)
        assert store.touch_run(run.id, when + timedelta(seconds=60)) is False
        assert store.get_run_by_id(run.id).heartbeat_at == when + timedelta(seconds=30)
        assert store.touch_run(10_000, when) is False  # no such run
    store.dispose()


def test_the_write_columns_are_the_tables_columns() -> None:
    """``_rows.TABLE_COLUMNS`` (what SQLite's writes are made of) lists every column of every
    table of ``_schema.py``, in order; the read lists name columns of it."""
    assert set(TABLE_COLUMNS) == set(t.metadata.tables)
    for table in t.metadata.tables.values():
        assert [c for c, _ in sqlite_columns(table.name)] == [c.name for c in table.columns]
    numbered = {n for n, tab in t.metadata.tables.items() if tab.autoincrement_column is not None}
    assert numbered == NUMBERED
    tables = {"r": "runs", "p": "pipelines", "s": "steps", "a": "artifacts"}
    for name in RUN_NAMES + STEP_NAMES + ARTIFACT_NAMES:
        alias, _, column = name.partition(".")
        assert column in dict(sqlite_columns(tables[alias])), name


_NAN = math.nan
# Values of every kind a column might be handed, right or wrong for it.
VALUES: list[Any] = [
    None,
    0,
    -7,
    2**62,
    True,
    1.5,
    _NAN,
    math.inf,
    "",
    "ünï 😀 \x00 \"'",
    "x" * 3000,
    b"\x00\xffbytes",
    bytearray(b"ab"),
    datetime(2026, 1, 2, 3, 4, 5, 678901),
    datetime(2026, 1, 2, 3, 4, 5),
    datetime(5, 1, 1),
    datetime(2026, 1, 2, 3, 4, 5, 1, tzinfo=timezone.utc),
    datetime(2026, 1, 2, 3, 4, 5, 1, tzinfo=timezone(timedelta(hours=-5))),
    date(2026, 1, 2),
    {"lr": 0.1, "bounds": {"inf": math.inf, "-inf": -math.inf, "nan": _NAN}, "ü": [1, _NAN]},
    [1, 2.5, "a", None, [math.inf]],
    {"$float": "inf"},
    {},
    [],
    ExecutionStatus.RUNNING,
    object(),
]


def _outcome(encode: Callable[[Any], Any] | None, value: Any) -> tuple[str, Any]:
    try:
        return ("ok", value if encode is None else encode(value))
    except (TypeError, ValueError) as e:
        return ("refused", type(e))


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and (a is b or a == b)


def test_sqlite_encoders_store_what_sqlalchemy_binds(tmp_path: Path) -> None:
    """Every column's encoder gives sqlite3 what SQLAlchemy's bind processor for it would,
    with the store's engine (its JSON serializer) or refuses what SQLAlchemy refuses."""
    store = SQLMetadataStore(f"sqlite:///{tmp_path / 'm.db'}")
    dialect = store.engine.dialect
    checked = 0
    for table in t.metadata.tables.values():
        ours = dict(sqlite_columns(table.name))
        for column in table.columns:
            theirs = column.type.dialect_impl(dialect).bind_processor(dialect)
            for value in VALUES:
                got, want = _outcome(ours[column.name], value), _outcome(theirs, value)
                where = f"{table.name}.{column.name} <- {value!r}"
                assert got[0] == want[0], (where, got, want)
                assert _same(got[1], want[1]), (where, got, want)
                checked += 1
    assert checked == len(VALUES) * sum(len(c) for c in TABLE_COLUMNS.values())
    store.dispose()


_PRAGMAS = ("journal_mode", "synchronous", "wal_autocheckpoint", "busy_timeout", "foreign_keys")


def _settings(conn: sqlite3.Connection) -> dict[str, Any]:
    out = {p: conn.execute(f"PRAGMA {p}").fetchone()[0] for p in _PRAGMAS}
    return out | {"isolation_level": conn.isolation_level, "autocommit": conn.in_transaction}


def test_the_runners_connections_are_set_up_as_the_engines(tmp_path: Path) -> None:
    store = SQLMetadataStore(f"sqlite:///{tmp_path / 'm.db'}")
    inserts = store._sqlite_inserts
    assert inserts is not None
    ours = inserts._connection()
    with store.engine.connect() as conn:
        engines = conn.connection.driver_connection
        assert isinstance(engines, sqlite3.Connection)
        want = _settings(engines)
    assert _settings(ours) == want
    assert want["synchronous"] == 1 and want["foreign_keys"] == 1  # (they were set)
    assert want["busy_timeout"] == 60_000 and want["isolation_level"] is None
    store.dispose()


def _store_with_a_run(tmp_path: Path) -> tuple[SQLMetadataStore, Any, datetime, SQLiteInserts]:
    """A new SQLite store with one run started, and its runner's write path."""
    store = SQLMetadataStore(f"sqlite:///{tmp_path / 'm.db'}")
    when = datetime.now(timezone.utc)
    run = store.create_run("p", "r", when)
    inserts = store._sqlite_inserts
    assert inserts is not None
    return store, run, when, inserts


def test_the_runners_connections_are_per_thread_and_closed_on_dispose(tmp_path: Path) -> None:
    import threading

    store, run, when, inserts = _store_with_a_run(tmp_path)
    mine = inserts._connection()
    assert inserts._connection() is mine  # held between transactions
    other: list[sqlite3.Connection] = []
    thread = threading.Thread(target=lambda: other.append(inserts._connection()))
    thread.start()
    thread.join()
    assert other[0] is not mine
    store.dispose()
    for conn in (mine, other[0]):
        with pytest.raises(sqlite3.ProgrammingError, match="closed"):
            conn.execute("SELECT 1")
    store.finish_run(run.id, ExecutionStatus.COMPLETED, when)  # a fresh connection
    assert inserts._connection() is not mine
    assert store.get_run_by_id(run.id).status is ExecutionStatus.COMPLETED
    store.dispose()


def test_connections_of_threads_that_ended_are_closed(tmp_path: Path) -> None:
    # A run's heartbeat thread writes, ends when no run is watched, and the next run starts
    # another: a long-lived process must not keep one connection per thread it ever had.
    import threading

    store, run, when, inserts = _store_with_a_run(tmp_path)
    seen: list[sqlite3.Connection] = []

    def beat() -> None:
        assert store.touch_run(run.id, when)
        seen.append(inserts._connection())

    for _ in range(20):
        thread = threading.Thread(target=beat)
        thread.start()
        thread.join()
    assert len(inserts._all) <= 2  # this thread's, and the last beat's (not reused yet)
    for conn in seen[:-1]:
        with pytest.raises(sqlite3.ProgrammingError, match="closed"):
            conn.execute("SELECT 1")
    store.dispose()


def test_errors_of_the_fast_path_are_store_errors_that_teach(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from runstack.exceptions import StoreError
    from runstack.metadata_stores import _engine

    monkeypatch.setattr(_engine, "BUSY_TIMEOUT_S", 0.2)  # (read as connections open)
    store = SQLMetadataStore(f"sqlite:///{tmp_path / 'm.db'}")
    run = store.create_run("p", "r", datetime.now(timezone.utc))
    # Another connection holds the write lock: the write waits busy_timeout, then says who.
    blocker = sqlite3.connect(tmp_path / "m.db", isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StoreError, match="stayed locked by another connection for 0.2 s"):
            store.finish_run(run.id, ExecutionStatus.COMPLETED, datetime.now(timezone.utc))
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    with pytest.raises(sa.exc.IntegrityError):  # a taken name passes through, as on Core
        store._write_rows(lambda insert: insert("pipelines", {"name": "p", "created_at": None}))
    store.dispose()


def test_a_forked_child_writes_on_a_connection_of_its_own(tmp_path: Path) -> None:
    import os

    store, run, when, inserts = _store_with_a_run(tmp_path)
    parents = inserts._connection()
    pid = os.fork()
    if pid == 0:  # the child: never the parent's connection (SQLite's locks are per process)
        code = 1
        try:
            if inserts._connection() is not parents:
                store.finish_run(run.id, ExecutionStatus.COMPLETED, when)
                code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert inserts._connection() is parents  # the parent's is its own still, and works
    assert store.get_run_by_id(run.id).status is ExecutionStatus.COMPLETED
    store.finish_run(run.id, ExecutionStatus.FAILED, when, error="x")
    assert store.get_run_by_id(run.id).status is ExecutionStatus.FAILED
    store.dispose()
