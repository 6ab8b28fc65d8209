"""How the per-step write reaches the database: SQLAlchemy Core, or straight to sqlite3.

Recording a step is a handful of INSERTs in one transaction. Through SQLAlchemy Core each
statement costs ~0.1 ms of execution set-up, more than SQLite takes to run it, and a trivial
step's whole budget is 1 ms. On SQLite the INSERTs therefore go to the driver directly, with
SQL text and bind processors (SQLAlchemy's own, per column type) derived once from the
tables, so column names and value encoding stay defined in one place: ``_schema.py``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any, TypeVar

import sqlalchemy as sa

from runstack.metadata_stores import _schema as t
from runstack.metadata_stores._engine import retried

T = TypeVar("T")

# insert(table, row) -> the new row's id; insert(table, [rows]) -> None;
# insert(table, None, delete=row_id) deletes that row instead.
Insert = Callable[..., Any]

_TABLES = (t.steps, t.artifacts, t.step_parameters, t.step_outputs, t.step_inputs)
_CORE_INSERTS = {table.name: table.insert() for table in _TABLES}


def core_insert(conn: sa.Connection) -> Insert:
    """INSERTs through SQLAlchemy Core on ``conn`` (every backend)."""

    def insert(table: sa.Table, rows: Any, delete: int | None = None) -> Any:
        if delete is not None:
            conn.execute(table.delete().where(table.c.id == delete))
            return None
        result = conn.execute(_CORE_INSERTS[table.name], rows)
        return result.inserted_primary_key[0] if isinstance(rows, dict) else None  # type: ignore[index]

    return insert


class SQLiteInserts:
    """INSERTs issued on the raw sqlite3 connection, prepared once per table."""

    def __init__(self, dialect: sa.Dialect) -> None:
        quote = dialect.identifier_preparer.quote
        self._prepared: dict[str, tuple[str, list[tuple[str, Any]]]] = {}
        for table in _TABLES:
            columns = [c for c in table.columns if c is not table.autoincrement_column]
            sql = (
                f"INSERT INTO {quote(table.name)} ({', '.join(quote(c.name) for c in columns)}) "
                f"VALUES ({', '.join('?' for _ in columns)})"
            )
            binders = [
                (c.name, c.type.dialect_impl(dialect).bind_processor(dialect)) for c in columns
            ]
            self._prepared[table.name] = (sql, binders)

    def bind(self, raw: sqlite3.Connection) -> Insert:
        prepared = self._prepared

        def insert(table: sa.Table, rows: Any, delete: int | None = None) -> Any:
            if delete is not None:
                raw.execute(f"DELETE FROM {table.name} WHERE id = ?", (delete,))
                return None
            sql, binders = prepared[table.name]

            def values(row: dict[str, Any]) -> tuple[Any, ...]:
                # A key left out is NULL, as Core would leave the column out of the INSERT.
                return tuple(
                    (process(row[name]) if process is not None else row[name])
                    if name in row
                    else None
                    for name, process in binders
                )

            if isinstance(rows, dict):
                return raw.execute(sql, values(rows)).lastrowid
            raw.executemany(sql, [values(r) for r in rows])
            return None

        return insert

    def transact(self, engine: sa.Engine, work: Callable[[Insert], T]) -> T:
        """Run ``work`` in one write transaction (``BEGIN IMMEDIATE``) on a pooled connection,
        retried as every write is (``_engine.retried``)."""

        def once() -> T:
            with engine.connect() as conn:
                raw = conn.connection.driver_connection
                assert raw is not None
                raw.execute("BEGIN IMMEDIATE")
                try:
                    out = work(self.bind(raw))
                except BaseException:
                    if raw.in_transaction:  # SQLite ends it itself on some errors (disk full)
                        raw.execute("ROLLBACK")
                    raise
                raw.execute("COMMIT")
                return out

        return retried(once, sqlite=True)
