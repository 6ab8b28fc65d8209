"""How the runner's writes reach the database: SQLAlchemy Core, or straight to sqlite3.

Recording a step (or starting or ending a run) is a handful of statements in one
transaction. Through SQLAlchemy Core each costs ~0.1 ms of execution set-up, more than SQLite
takes to run it, and a trivial step's whole budget is 0.3 ms; importing SQLAlchemy at all
costs a short script ~100 ms. On SQLite they therefore go to the driver directly, on
connections of the runner's own (made as the engine's are: ``_engine.connect_sqlite``), with
SQL text and value encoders made from the column lists in ``_rows.py``; a test checks that
they store what SQLAlchemy's bind processors for the tables of ``_schema.py`` would.

Callers name tables by name, so that recording a run on SQLite needs neither SQLAlchemy nor
``_schema.py``; the Core path looks the names up in ``_schema.metadata``.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sqlite3
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from runstack.metadata_stores._engine import retried
from runstack.metadata_stores._lazy import LazyModule
from runstack.metadata_stores._rows import NUMBERED, TABLE_COLUMNS, marks, sqlite_columns

if TYPE_CHECKING:
    import sqlalchemy as sa

    from runstack.metadata_stores import _schema as t
else:
    sa = LazyModule("sqlalchemy")
    t = LazyModule("runstack.metadata_stores._schema")

T = TypeVar("T")


class Insert(Protocol):
    """``insert(table, row)`` -> the new row's id; ``insert(table, [rows])`` -> None;
    ``insert(table, row, update=row_id)`` sets the columns in ``row`` of that row instead: its
    id if it was there (and, given ``where=(column, value)``, that column held that value),
    else None; ``insert(table, None, find=(column, value))`` -> the id of the row whose column
    holds value, or None. ``table`` is a table's name (a key of ``_rows.TABLE_COLUMNS``)."""

    def __call__(
        self,
        table: str,
        rows: Any,
        update: int | None = None,
        find: tuple[str, Any] | None = None,
        where: tuple[str, Any] | None = None,
    ) -> Any: ...


def _no_table(table: object) -> KeyError:
    return KeyError(f"No table {table!r} to write: insert() takes a table's name, e.g. 'runs'.")


@functools.cache
def _core_inserts() -> dict[str, sa.Insert]:
    return {name: t.metadata.tables[name].insert() for name in TABLE_COLUMNS}


_LEFT_OUT = object()


def core_insert(conn: sa.Connection) -> Insert:
    """INSERTs through SQLAlchemy Core on ``conn`` (every backend)."""
    tables = t.metadata.tables

    def insert(
        table: str,
        rows: Any,
        update: int | None = None,
        find: tuple[str, Any] | None = None,
        where: tuple[str, Any] | None = None,
    ) -> Any:
        if table not in TABLE_COLUMNS:
            raise _no_table(table)
        tab = tables[table]
        if find is not None:
            return conn.execute(sa.select(tab.c.id).where(tab.c[find[0]] == find[1])).scalar()
        if update is not None:
            q = tab.update().where(tab.c.id == update)
            if where is not None:
                q = q.where(tab.c[where[0]] == where[1])
            done = conn.execute(q.values(rows))
            return update if done.rowcount else None
        result = conn.execute(_core_inserts()[table], rows)
        return result.inserted_primary_key[0] if isinstance(rows, dict) else None  # type: ignore[index]

    return insert


def _q(name: str) -> str:
    # Every name is one of TABLE_COLUMNS's (checked before use: SQLite would take an unknown
    # double-quoted name in a condition for a string literal).
    return f'"{name}"'


class SQLiteInserts:
    """Statements issued on sqlite3 connections of the runner's own, one held per thread,
    their SQL made once per table (and per set of columns updated)."""

    def __init__(self, connect: Callable[[], sqlite3.Connection]) -> None:
        self._connect = connect
        self._prepared: dict[str, tuple[str, list[tuple[str, Any]]]] = {}
        self._encoders: dict[str, dict[str, Any]] = {}
        for table in TABLE_COLUMNS:
            columns = sqlite_columns(table)
            self._encoders[table] = dict(columns)
            if table in NUMBERED:
                columns = columns[1:]  # the database numbers the row
            names = ", ".join(_q(c) for c, _ in columns)
            sql = f"INSERT INTO {_q(table)} ({names}) VALUES ({marks(len(columns))})"
            self._prepared[table] = (sql, columns)
        self._updates: dict[tuple[str, tuple[str, ...], str | None], str] = {}
        self._held = threading.local()  # ((pid, generation), connection) of this thread
        # (pid, thread, connection) of every connection held; those of threads that ended
        # (a run's heartbeat thread, one per watched stretch) are closed as new ones open.
        self._all: list[tuple[int, threading.Thread, sqlite3.Connection]] = []
        self._generation = 0
        self._lock = threading.Lock()

    def _encoded(self, table: str, column: str, value: Any) -> Any:
        if table not in self._encoders:
            raise _no_table(table)
        try:
            encode = self._encoders[table][column]
        except KeyError:
            raise KeyError(f"Table {table!r} has no column {column!r}.") from None
        return value if encode is None else encode(value)

    def _update_sql(self, table: str, columns: tuple[str, ...], where: str | None) -> str:
        key = (table, columns, where)
        sql = self._updates.get(key)
        if sql is None:
            sets = ", ".join(f"{_q(c)} = ?" for c in columns)
            sql = f"UPDATE {_q(table)} SET {sets} WHERE id = ?"
            if where is not None:
                sql += f" AND {_q(where)} = ?"
            self._updates[key] = sql
        return sql

    def bind(self, raw: sqlite3.Connection) -> Insert:
        prepared, encoded = self._prepared, self._encoded

        def insert(
            table: str,
            rows: Any,
            update: int | None = None,
            find: tuple[str, Any] | None = None,
            where: tuple[str, Any] | None = None,
        ) -> Any:
            if find is not None:
                value = encoded(table, find[0], find[1])
                sql = f"SELECT id FROM {_q(table)} WHERE {_q(find[0])} = ?"
                row = raw.execute(sql, (value,)).fetchone()
                return None if row is None else row[0]
            if update is not None:
                keys = tuple(rows)
                params = [encoded(table, k, rows[k]) for k in keys]
                params.append(update)
                if where is not None:
                    params.append(encoded(table, where[0], where[1]))
                sql = self._update_sql(table, keys, None if where is None else where[0])
                return update if raw.execute(sql, params).rowcount else None
            try:
                sql, columns = prepared[table]
            except KeyError:
                raise _no_table(table) from None

            def values(row: dict[str, Any]) -> list[Any]:
                # A key left out is NULL, as Core would leave the column out of the INSERT.
                out: list[Any] = []
                used = 0
                for name, encode in columns:
                    value = row.get(name, _LEFT_OUT)
                    if value is _LEFT_OUT:
                        out.append(None)
                    else:
                        used += 1
                        out.append(value if encode is None else encode(value))
                if used != len(row):  # as Core refuses "unconsumed column names"
                    unknown = sorted(set(row) - {name for name, _ in columns})
                    raise KeyError(f"Cannot insert into {table!r}: no column(s) {unknown}.")
                return out

            if isinstance(rows, dict):
                return raw.execute(sql, values(rows)).lastrowid
            raw.executemany(sql, [values(r) for r in rows])
            return None

        return insert

    def _connection(self) -> sqlite3.Connection:
        """This thread's own connection, kept open between transactions (opening one and
        setting it up costs more than a step's statements). :meth:`release` (when the store is
        disposed or the process ends) closes them all."""
        held = getattr(self._held, "conn", None)
        key = (os.getpid(), self._generation)
        # A release() or a fork since: open a fresh one.
        if held is None or held[0] != key:
            if held is not None:
                self._drop()
            conn = self._connect()
            held = self._held.conn = (key, conn)
            with self._lock:
                ended = [e for e in self._all if e[0] == key[0] and not e[1].is_alive()]
                self._all = [e for e in self._all if e not in ended]
                self._all.append((key[0], threading.current_thread(), conn))
            for _, _, old in ended:  # their thread is gone: nothing else uses them
                with contextlib.suppress(Exception):
                    old.close()
        return held[1]

    def _drop(self) -> None:
        """Close this thread's connection after an error: the next write opens a fresh one."""
        held = getattr(self._held, "conn", None)
        self._held.conn = None
        if held is not None and held[0][0] == os.getpid():  # never one a parent process owns
            with self._lock:
                self._all = [e for e in self._all if e[2] is not held[1]]
            with contextlib.suppress(Exception):
                held[1].close()

    def release(self) -> None:
        """Close every connection held by any thread (when the store is disposed)."""
        with self._lock:
            held, self._all = self._all, []
            self._generation += 1
        for pid, _thread, conn in held:
            if pid == os.getpid():  # a forked child leaves its parent's connections alone
                with contextlib.suppress(Exception):  # at exit it may be half gone
                    conn.close()

    def transact(self, work: Callable[[Insert], T]) -> T:
        """Run ``work`` in one write transaction (``BEGIN IMMEDIATE``) on this thread's
        connection, retried as every write is (``_engine.retried``)."""

        def once() -> T:
            raw = self._connection()
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
