"""A metadata store opened so that it cannot write: what the dashboard browses through.

Read-only by construction, not by care: an SQLite store is opened with ``mode=ro`` (the file
is never written, not even by a checkpoint), PostgreSQL sessions start with
``default_transaction_read_only`` and MySQL sessions with ``SET SESSION TRANSACTION READ ONLY``,
so any write is refused by the database whatever role the stack's credentials have. No schema
is created or migrated: a store that needs it is refused with what to run.
"""

from __future__ import annotations

import weakref
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event

from runstack.exceptions import SchemaVersionError, StoreError
from runstack.metadata_stores import _sqlite_file
from runstack.metadata_stores._connection import _close, _close_raw
from runstack.metadata_stores._engine import BUSY_TIMEOUT_S, normalize_url
from runstack.metadata_stores._migrate import current_revision, known_revisions
from runstack.metadata_stores._schema import SCHEMA_REVISION
from runstack.metadata_stores._sql_store import SQLMetadataStore


def _sqlite_file_of(url: sa.URL) -> Path | None:
    db = url.database
    if url.get_backend_name() != "sqlite" or not db or db == ":memory:":
        return None
    if db.startswith("file:"):
        db = db[5:].split("?", 1)[0]
    return Path(db).expanduser().resolve()


def _read_only_sqlite(engine: sa.Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # BEGIN below: one snapshot per connection checkout
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA query_only=ON")
        cur.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        conn.connection.driver_connection.execute("BEGIN")  # type: ignore[union-attr]


def _read_only_mysql(engine: sa.Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute("SET SESSION TRANSACTION READ ONLY")
        cur.close()


class ReadOnlyMetadataStore(SQLMetadataStore):
    """An :class:`SQLMetadataStore` whose every connection refuses writes (see module doc)."""

    def __init__(self, url: str | sa.URL, **engine_kwargs: Any) -> None:
        url = normalize_url(url)
        path = _sqlite_file_of(url)
        self.read_only_path = path
        if path is not None:
            if not path.is_file():
                raise StoreError(
                    f"There is no SQLite metadata store at {path}: nothing has run on this "
                    "stack yet. Run a pipeline first, or choose the stack with --stack."
                )
            _sqlite_file.check(path)
            # A URI filename: SQLite itself refuses to write the file (sqlite3 `uri=True`).
            url = sa.URL.create("sqlite", database=f"file:{path}?mode=ro", query={"uri": "true"})
        elif url.get_backend_name() == "postgresql":
            args = engine_kwargs.setdefault("connect_args", {})
            args["options"] = (
                args.get("options", "") + " -c default_transaction_read_only=on"
            ).strip()
        super().__init__(url, **engine_kwargs)
        if path is not None:  # read by stdlib sqlite3 too, which SQLite keeps from writing
            self._raw_uri = path.as_uri() + "?mode=ro"
            weakref.finalize(self, _close_raw, self._raw)

    def _open(self, url: sa.URL, engine_kwargs: dict[str, Any]) -> sa.Engine:
        engine = sa.create_engine(url, **engine_kwargs)
        backend = url.get_backend_name()
        if backend == "sqlite":
            _read_only_sqlite(engine)
        elif backend in ("mysql", "mariadb"):
            _read_only_mysql(engine)
        try:
            with self._errors(), engine.connect() as conn:
                revision = current_revision(conn)
        except BaseException:
            engine.dispose()
            raise
        if revision != SCHEMA_REVISION:
            engine.dispose()
            if revision is not None and revision not in known_revisions():
                raise SchemaVersionError(
                    f"The metadata store at {self.display_url} has schema revision "
                    f"{revision!r}, newer than this runstack understands ({SCHEMA_REVISION!r}). "
                    "Upgrade runstack (pip install -U runstack) to browse it."
                )
            raise StoreError(
                f"The metadata store at {self.display_url} has schema revision "
                f"{revision or '(none)'}, not {SCHEMA_REVISION!r}, and is opened read-only, so "
                "it is not upgraded here. Run any runstack command that writes to it (e.g. "
                "`runstack run reconcile`) with credentials that may, then browse it again."
            )
        return engine

    @property
    def display_url(self) -> str:
        if self.read_only_path is not None:
            return f"sqlite:///{self.read_only_path} (read-only)"
        return super().display_url + " (read-only)"

    def dispose(self) -> None:
        """Close the connections; a read-only store checkpoints nothing."""
        _close(self._lazy, self._raw)


def open_read_only(url: str | sa.URL) -> ReadOnlyMetadataStore:
    """The metadata store at ``url``, opened so that it cannot write."""
    return ReadOnlyMetadataStore(url)
