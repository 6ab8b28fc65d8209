"""What the conformance tests share besides fixtures: the servers, a backend, a statement counter."""

from __future__ import annotations

import os
from dataclasses import dataclass

import sqlalchemy as sa

from runstack.metadata_stores import SQLMetadataStore

SERVERS = {
    "postgresql": os.environ.get(
        "RUNSTACK_TEST_POSTGRESQL_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
    ),
    "mysql": os.environ.get("RUNSTACK_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/test"),
}
BACKENDS = ["sqlite", "postgresql", "mysql"]


@dataclass
class Backend:
    """One database for one test: its flavor, the settings to register it, and its URL."""

    flavor: str
    url: str

    @property
    def settings(self) -> dict[str, str]:
        if self.flavor == "sqlite":
            return {"path": self.url.removeprefix("sqlite:///")}
        return {"url": self.url}


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
