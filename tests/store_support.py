"""What tests share about a metadata store: counting its statements, making SQLite refuse a
record."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import sqlalchemy as sa

from runstack.metadata_stores import SQLMetadataStore


def refuse_completed_record(db: Path, step_name: str) -> None:
    """Make the store refuse, with 'refused by the test', to record ``step_name`` completed (a
    finished step updates its ``running`` row; a cache hit inserts a row)."""
    conn = sqlite3.connect(db)
    for event in ("INSERT", "UPDATE"):
        conn.execute(
            f"CREATE TRIGGER refuse_{event.lower()} BEFORE {event} ON steps "
            f"WHEN NEW.name = '{step_name}' AND NEW.status = 'completed' "
            "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
        )
    conn.commit()
    conn.close()


class StatementCounter:
    """Counts SQL statements a store sends: on its engine (``before_cursor_execute``) and
    straight through the DB-API (its ``statement_hooks``)."""

    def __init__(self, store: SQLMetadataStore) -> None:
        self.store = store
        self.statements: list[str] = []

    def _on(self, _conn, _cursor, statement, _params, _context, _many) -> None:
        self.statements.append(statement)

    def __enter__(self) -> StatementCounter:
        sa.event.listen(self.store.engine, "before_cursor_execute", self._on)
        self.store.statement_hooks.append(self.statements.append)
        return self

    def __exit__(self, *exc: object) -> None:
        self.store.statement_hooks.remove(self.statements.append)
        sa.event.remove(self.store.engine, "before_cursor_execute", self._on)

    @property
    def queries(self) -> int:
        """Statements other than transaction control (runstack sends BEGIN itself on SQLite)."""
        return sum(not s.lstrip().upper().startswith("BEGIN") for s in self.statements)
