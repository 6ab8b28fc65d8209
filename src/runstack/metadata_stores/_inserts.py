"""How the runner's writes reach the database: SQLAlchemy Core, or straight to sqlite3.

Recording a step (or starting or ending a run) is a handful of statements in one
transaction. Through SQLAlchemy Core each costs ~0.1 ms of execution set-up, more than SQLite
takes to run it, and a trivial step's whole budget is 0.3 ms. On SQLite they therefore go to
the driver directly, with SQL text and bind processors (SQLAlchemy's own, per column type)
derived once from the tables, so column names and value encoding stay defined in one place:
``_schema.py``.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sqlite3
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from runstack.metadata_stores._engine import retried
from runstack.metadata_stores._lazy import LazyModule

if TYPE_CHECKING:
    import sqlalchemy as sa

    from runstack.metadata_stores import _schema as t
else:
    sa = LazyModule("sqlalchemy")
    t = LazyModule("runstack.metadata_stores._schema")

T = TypeVar("T")

# insert(table, row) -> the new row's id; insert(table, [rows]) -> None;
# insert(table, row, update=row_id) sets the columns in ``row`` of that row instead: its id if
# it was there, else None; insert(table, None, find=(column, value)) -> the id of the row whose
# column holds value, or None.
Insert = Callable[..., Any]


@functools.cache
def _tables() -> tuple[sa.Table, ...]:
    return (
        t.pipelines,
        t.runs,
        t.run_tags,
        t.steps,
        t.artifacts,
        t.step_parameters,
        t.step_outputs,
        t.step_inputs,
    )


@functools.cache
def _core_inserts() -> dict[str, sa.Insert]:
    return {table.name: table.insert() for table in _tables()}


_LEFT_OUT = object()


def core_insert(conn: sa.Connection) -> Insert:
    """INSERTs through SQLAlchemy Core on ``conn`` (every backend)."""

    def insert(
        table: sa.Table, rows: Any, update: int | None = None, find: tuple[str, Any] | None = None
    ) -> Any:
        if find is not None:
            return conn.execute(sa.select(table.c.id).where(table.c[find[0]] == find[1])).scalar()
        if update is not None:
            done = conn.execute(table.update().where(table.c.id == update).values(rows))
            return update if done.rowcount else None
        result = conn.execute(_core_inserts()[table.name], rows)
        return result.inserted_primary_key[0] if isinstance(rows, dict) else None  # type: ignore[index]

    return insert


class SQLiteInserts:
    """Statements issued on the raw sqlite3 connection, their SQL made once per table (and
    per set of columns updated)."""

    def __init__(self, dialect: sa.Dialect) -> None:
        quote = dialect.identifier_preparer.quote
        self._quote = quote
        self._prepared: dict[str, tuple[str, list[tuple[str, Any]]]] = {}
        self._binders: dict[str, dict[str, Any]] = {}
        for table in _tables():
            columns = [c for c in table.columns if c is not table.autoincrement_column]
            sql = (
                f"INSERT INTO {quote(table.name)} ({', '.join(quote(c.name) for c in columns)}) "
                f"VALUES ({', '.join('?' for _ in columns)})"
            )
            binders = [
                (c.name, c.type.dialect_impl(dialect).bind_processor(dialect)) for c in columns
            ]
            self._prepared[table.name] = (sql, binders)
            self._binders[table.name] = dict(binders)
        self._updates: dict[tuple[str, tuple[str, ...]], str] = {}
        self._held = threading.local()  # ((pid, generation, pool), connection) per thread
        self._all: list[tuple[int, Any]] = []  # (pid, connection) of every one held
        self._generation = 0
        self._lock = threading.Lock()

    def _update_sql(self, table: str, columns: tuple[str, ...]) -> str:
        sql = self._updates.get((table, columns))
        if sql is None:
            q = self._quote
            sets = ", ".join(f"{q(c)} = ?" for c in columns)
            sql = self._updates[(table, columns)] = f"UPDATE {q(table)} SET {sets} WHERE id = ?"
        return sql

    def bind(self, raw: sqlite3.Connection) -> Insert:
        prepared, all_binders, quote = self._prepared, self._binders, self._quote

        def insert(
            table: sa.Table,
            rows: Any,
            update: int | None = None,
            find: tuple[str, Any] | None = None,
        ) -> Any:
            if find is not None:
                sql = f"SELECT id FROM {quote(table.name)} WHERE {quote(find[0])} = ?"
                row = raw.execute(sql, (find[1],)).fetchone()
                return None if row is None else row[0]
            if update is not None:
                binders = all_binders[table.name]
                keys = tuple(rows)
                params = [(p(rows[k]) if (p := binders[k]) is not None else rows[k]) for k in keys]
                params.append(update)
                done = raw.execute(self._update_sql(table.name, keys), params).rowcount
                return update if done else None
            sql, binders_list = prepared[table.name]

            def values(row: dict[str, Any]) -> list[Any]:
                # A key left out is NULL, as Core would leave the column out of the INSERT.
                out: list[Any] = []
                for name, process in binders_list:
                    value = row.get(name, _LEFT_OUT)
                    if value is _LEFT_OUT:
                        out.append(None)
                    else:
                        out.append(value if process is None else process(value))
                return out

            if isinstance(rows, dict):
                return raw.execute(sql, values(rows)).lastrowid
            raw.executemany(sql, [values(r) for r in rows])
            return None

        return insert

    def _connection(self, engine: sa.Engine) -> sqlite3.Connection:
        """This thread's own connection from the pool, kept checked out between transactions:
        checking one out and in again cost ~45 us, twice per step. :meth:`release` (when the
        store is disposed or the process ends) returns them all."""
        held = getattr(self._held, "conn", None)
        pid = os.getpid()
        # A new pool (engine.dispose()), a release() or a fork since: take a fresh one.
        if held is None or held[0] != (pid, self._generation, engine.pool):
            if held is not None:
                self._drop()
            fairy = engine.raw_connection()
            held = self._held.conn = ((pid, self._generation, engine.pool), fairy)
            with self._lock:
                self._all.append((pid, fairy))
        raw = held[1].driver_connection
        assert raw is not None
        return raw

    def _drop(self) -> None:
        """Give this thread's connection back after an error: the next write takes a fresh one."""
        held = getattr(self._held, "conn", None)
        self._held.conn = None
        if held is not None and held[0][0] == os.getpid():  # never one a parent process owns
            with self._lock:
                if (held[0][0], held[1]) in self._all:
                    self._all.remove((held[0][0], held[1]))
            with contextlib.suppress(Exception):
                held[1].close()

    def release(self) -> None:
        """Return every connection held by any thread to the pool (before it is disposed)."""
        with self._lock:
            held, self._all = self._all, []
            self._generation += 1
        for pid, fairy in held:
            if pid == os.getpid():  # a forked child leaves its parent's connections alone
                with contextlib.suppress(Exception):  # at exit the pool may be half gone
                    fairy.close()

    def transact(self, engine: sa.Engine, work: Callable[[Insert], T]) -> T:
        """Run ``work`` in one write transaction (``BEGIN IMMEDIATE``) on this thread's
        connection, retried as every write is (``_engine.retried``)."""

        def once() -> T:
            raw = self._connection(engine)
            try:
                raw.execute("BEGIN IMMEDIATE")
                try:
                    out = work(self.bind(raw))
                except BaseException:
                    if raw.in_transaction:  # SQLite ends it itself on some errors (disk full)
                        raw.execute("ROLLBACK")
                    raise
                raw.execute("COMMIT")
            except sqlite3.IntegrityError:
                raise
            except sqlite3.Error:
                self._drop()
                raise
            return out

        return retried(once, sqlite=True)
