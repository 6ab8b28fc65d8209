"""Engine set-up per backend: driver defaults, SQLite pragmas, which errors merit a retry."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy import event

from runstack.exceptions import StoreError

ATTEMPTS = 6  # tries of one write transaction
# Errors after which the whole transaction may simply be run again.
_RETRY_SQLSTATES = {"40001", "40P01"}  # PostgreSQL: serialization failure, deadlock
_RETRY_MYSQL_CODES = {1213, 1205}  # MySQL: deadlock, lock wait timeout


def is_retryable(e: sa.exc.DBAPIError) -> bool:
    orig = e.orig
    if getattr(orig, "sqlstate", None) in _RETRY_SQLSTATES:
        return True
    args = getattr(orig, "args", ())
    if args and args[0] in _RETRY_MYSQL_CODES:
        return True
    return "database is locked" in str(orig)  # SQLite, past busy_timeout


_DRIVERS = {
    "postgres": "postgresql+psycopg",
    "postgresql": "postgresql+psycopg",
    "mysql": "mysql+pymysql",
    "mariadb": "mariadb+pymysql",
}


def normalize_url(url: str | sa.URL) -> sa.URL:
    """A SQLAlchemy URL, with runstack's drivers filled in (``postgresql://`` -> psycopg 3)."""
    if isinstance(url, str):
        scheme, sep, rest = url.partition("://")
        if sep and scheme in _DRIVERS:
            url = f"{_DRIVERS[scheme]}://{rest}"
    try:
        return sa.make_url(url)
    except sa.exc.ArgumentError as e:
        raise StoreError(
            f"Not a database URL: {e}. Expected e.g. sqlite:////path/metadata.db, "
            "postgresql+psycopg://user@host:5432/db or mysql+pymysql://user@host:3306/db."
        ) from None


def setup_sqlite(engine: sa.Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves, below
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA busy_timeout=60000")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        # Writers take the write lock up front, so busy_timeout applies instead of a
        # "database is locked" error when two transactions both try to upgrade a read lock.
        immediate = conn.get_execution_options().get("runstack_write", False)
        # Straight to the driver: this runs for every transaction, and SQLAlchemy's statement
        # machinery costs more than the BEGIN itself.
        conn.connection.driver_connection.execute(  # type: ignore[union-attr]
            "BEGIN IMMEDIATE" if immediate else "BEGIN"
        )
