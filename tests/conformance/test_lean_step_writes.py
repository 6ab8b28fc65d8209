"""Schema revision 0010 (fewer pages written per step), on every backend.

SQLite keeps ``step_inputs``/``step_outputs`` WITHOUT ROWID and the cache index holds only
rows with a cache key (PostgreSQL too). A store written at 0009 is upgraded in place: every
input and output link reads back the same and cache hits still find their source.
"""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest
import sqlalchemy as sa
from conformance_support import Backend, downgrade

from runstack.metadata_stores import SQLMetadataStore
from runstack.metadata_stores._migrate import upgrade
from runstack.metadata_stores._recording import CACHE_LOOKUP
from runstack.pipelines import pipeline
from runstack.repository import Repository
from runstack.steps import step
from runstack.steps._base_step import BaseStep

CACHE_INDEX = "ix_steps_cache_key_status"


@step
def make() -> list:
    return [1, 2, 3]


@step(enable_cache=False)
def total(values: list) -> int:
    return sum(values)


@step
def double(value: int) -> int:
    return 2 * value


@pipeline
def chain(m: BaseStep, t: BaseStep, d: BaseStep) -> None:  # type: ignore[no-untyped-def]
    d(t(m()))


def _run(name: str) -> Any:
    return chain(m=make(), t=total(), d=double()).run(run_name=name)


def _links(repo: Repository) -> dict[tuple[str, str], Any]:
    """Every recorded step's inputs and outputs: (artifact id, value), by run and step."""
    found = {}
    for run in repo.get_history().get_pipeline("chain").runs:
        for s in run.steps:
            found[(run.name, s.name)] = (
                {n: (a.id, a.read()) for n, a in s.inputs.items()},
                {n: (a.id, a.read()) for n, a in s.outputs.items()},
                s.is_cached,
            )
    return found


def _shape(store: SQLMetadataStore) -> dict[str, Any]:
    """What 0010 changes, as the database reports it."""
    with store.engine.connect() as conn:
        dialect = conn.dialect.name
        if dialect == "sqlite":
            sql = dict(conn.execute(sa.text("SELECT name, sql FROM sqlite_master")).all())
            return {
                "without_rowid": {
                    t: "WITHOUT ROWID" in sql[t].upper() for t in ("step_inputs", "step_outputs")
                },
                "partial": " WHERE " in sql[CACHE_INDEX].upper(),
            }
        if dialect == "postgresql":
            indexdef = conn.execute(
                sa.text(
                    "SELECT indexdef FROM pg_indexes "
                    "WHERE indexname = :n AND schemaname = current_schema()"
                ),
                {"n": CACHE_INDEX},
            ).scalar()
            return {"partial": " WHERE " in indexdef.upper()}
        indexes = {ix["name"]: ix for ix in sa.inspect(conn).get_indexes("steps")}
        return {"columns": indexes[CACHE_INDEX]["column_names"]}


def _expected(backend: Backend, new: bool) -> dict[str, Any]:
    if backend.flavor == "sqlite":
        return {"without_rowid": {"step_inputs": new, "step_outputs": new}, "partial": new}
    if backend.flavor == "postgresql":
        return {"partial": new}
    return {"columns": ["cache_key", "status"]}  # MySQL/MariaDB: no partial indexes, unchanged


def test_a_new_store_has_the_lean_shape(store: SQLMetadataStore, backend: Backend) -> None:
    assert _shape(store) == _expected(backend, new=True)


def test_a_0009_store_is_upgraded_with_every_link_and_cache_hit_intact(
    team: Repository, backend: Backend
) -> None:
    _run("first")
    _run("second")  # make and double: cache hits on "first"
    store = team.active_stack.metadata_store
    before = _links(team)
    assert before[("second", "m")][2] and before[("second", "d")][2]
    downgrade(store.engine, "0009")
    assert _shape(store) == _expected(backend, new=False)
    upgrade(store.engine)  # what opening the store does
    assert _shape(store) == _expected(backend, new=True)
    assert _links(team) == before
    # The cache index still finds the sources: the upgraded history serves hits.
    third = _run("third")
    assert third.get_step("m").is_cached and third.get_step("d").is_cached
    assert not third.get_step("t").is_cached  # its cache is off
    upgrade(store.engine)  # again: nothing to do, nothing changed
    assert _links(team)[("first", "d")] == before[("first", "d")]


def test_a_0009_sqlite_store_with_links_to_nothing_is_upgraded(
    team: Repository, backend: Backend, capsys: pytest.CaptureFixture[str]
) -> None:
    """Rows the sqlite3 shell (foreign keys off) left pointing at a deleted step or artifact
    must not make the upgrade fail at every open; no read returned them, none is lost."""
    if backend.flavor != "sqlite":
        return  # the servers enforce foreign keys always; their link tables are not copied
    _run("first")
    store = team.active_stack.metadata_store
    before = _links(team)
    step_id = team.get_history().get_run("first").get_step("t").id
    downgrade(store.engine, "0009")
    raw = sqlite3.connect(backend.settings["path"])  # as the sqlite3 shell: foreign keys off
    with raw:
        raw.execute("INSERT INTO step_outputs VALUES (999999, 'gone', 0, 1)")  # no such step
        raw.execute(f"INSERT INTO step_inputs VALUES ({step_id}, 'ghost', 9, 999999)")
    raw.close()
    upgrade(store.engine)
    assert _shape(store) == _expected(backend, new=True)
    assert _links(team) == before
    err = capsys.readouterr().err
    assert "left out 1 row(s) of step_inputs" in err and "left out 1 row(s) of step_outputs" in err


def test_sqlite_cache_lookups_search_the_partial_index(team: Repository, backend: Backend) -> None:
    """The lookup's ``cache_key = ?`` implies the index's ``cache_key IS NOT NULL``; were it
    not used, every lookup would read every step ever recorded."""
    if backend.flavor != "sqlite":
        return  # the planners of the servers choose by statistics; SQLite's by shape
    _run("first")
    store = team.active_stack.metadata_store
    raw = store.engine.raw_connection()
    try:
        plan = raw.cursor().execute(f"EXPLAIN QUERY PLAN {CACHE_LOOKUP}", ("x", "completed", 3))
        details = " ".join(str(row[-1]) for row in plan.fetchall())
    finally:
        raw.close()
    assert f"INDEX {CACHE_INDEX}" in details and "SCAN steps" not in details, details
