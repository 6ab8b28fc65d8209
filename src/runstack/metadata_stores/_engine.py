"""Engine set-up per backend: driver defaults, SQLite pragmas, which errors merit a retry."""

from __future__ import annotations

import functools
import importlib.util
import json
import math
import random
import sqlite3
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from runstack.exceptions import StoreError
from runstack.metadata_stores._lazy import LazyModule

if TYPE_CHECKING:
    import sqlalchemy as sa
else:
    sa = LazyModule("sqlalchemy")

T = TypeVar("T")

ATTEMPTS = 6  # tries of one write transaction
# How long an SQLite writer waits for another connection's write lock before giving up (read
# when a connection opens). A write that waited this long is not retried: the lock is held.
BUSY_TIMEOUT_S = 60.0
# Errors after which the whole transaction may simply be run again.
_RETRY_SQLSTATES = {"40001", "40P01"}  # PostgreSQL: serialization failure, deadlock
_RETRY_MYSQL_CODES = {1213, 1205}  # MySQL: deadlock, lock wait timeout


def _sqlalchemy_error(e: BaseException, name: str) -> bool:
    """Whether ``e`` is SQLAlchemy's exception ``name`` (``sqlalchemy.exc``): never, in a
    process that has not imported SQLAlchemy, which is then not imported to ask."""
    return "sqlalchemy" in sys.modules and isinstance(e, getattr(sa.exc, name))


def is_integrity_error(e: BaseException) -> bool:
    """Whether ``e`` is a constraint violation (sqlite3's, or any driver's through SQLAlchemy)."""
    return isinstance(e, sqlite3.IntegrityError) or _sqlalchemy_error(e, "IntegrityError")


def is_driver_error(e: BaseException) -> bool:
    """Whether ``e`` is an error of the database or its driver (sqlite3's, or any driver's
    through SQLAlchemy), as opposed to one of runstack's or the caller's."""
    return isinstance(e, sqlite3.Error) or _sqlalchemy_error(e, "DBAPIError")


def is_retryable(e: BaseException) -> bool:
    """Whether a transaction that failed with ``e`` (a SQLAlchemy or a raw sqlite3 error) may
    simply be run again."""
    orig = getattr(e, "orig", None) or e
    if getattr(orig, "sqlstate", None) in _RETRY_SQLSTATES:
        return True
    args = getattr(orig, "args", ())
    if args and args[0] in _RETRY_MYSQL_CODES:
        return True
    return "database is locked" in str(orig)  # SQLite, past busy_timeout


def retried(transaction: Callable[[], T], *, sqlite: bool) -> T:
    """Run ``transaction`` (one whole write transaction) again while the database aborts it
    for a concurrent one, with growing randomized pauses; the last error is raised as is.

    PostgreSQL and MySQL may abort one of two concurrent transactions (deadlock, serialization
    failure, lock wait timeout); SQLite gives up past ``busy_timeout`` under heavy contention.
    An SQLite write that waited (nearly) the whole timeout is not retried: the lock is held,
    not contended, and another try would only wait as long again. A constraint violation is
    never retried: callers decide what a taken name means.
    """
    for attempt in range(ATTEMPTS):
        began = time.monotonic()
        try:
            return transaction()
        except Exception as e:
            if is_integrity_error(e) or not is_driver_error(e):
                raise
            waited_out = sqlite and time.monotonic() - began >= BUSY_TIMEOUT_S * 0.8
            if attempt == ATTEMPTS - 1 or not is_retryable(e) or waited_out:
                raise
        time.sleep(random.uniform(0.01, 0.05) * 2**attempt)
    raise AssertionError("unreachable")


# JSON has no NaN or infinity; PostgreSQL and MySQL refuse Python's ``NaN``/``Infinity`` tokens
# in JSON columns. Such floats are stored as ``{"$float": "inf"}`` (``"-inf"``, ``"nan"``) on every
# backend and read back as floats, so a config field ``max_grad_norm = float("inf")`` is kept.
_FLOAT_TAG = "$float"
_NON_FINITE = {"inf": math.inf, "-inf": -math.inf, "nan": math.nan}


def _tagged(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return {_FLOAT_TAG: "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")}
    if isinstance(value, dict):
        return {k: _tagged(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_tagged(v) for v in value]
    return value


# json.dumps(value, allow_nan=False) makes a new encoder on every call (~2 us; a step
# writes several JSON columns): one, made once, encodes the same text.
_encode = json.JSONEncoder(allow_nan=False).encode


def json_dumps(value: Any) -> str:
    """The text stored in JSON columns: standard JSON, non-finite floats tagged."""
    try:  # almost every value has no NaN/inf: encode it as it is (4 JSON columns per step)
        return _encode(value)
    except ValueError:  # "Out of range float values": copy it with those floats tagged
        return _encode(_tagged(value))


def _untag(obj: dict[str, Any]) -> Any:
    if len(obj) == 1 and _FLOAT_TAG in obj and obj[_FLOAT_TAG] in _NON_FINITE:
        return _NON_FINITE[obj[_FLOAT_TAG]]
    return obj


def json_loads(text: str | bytes) -> Any:
    """A JSON column's value (older SQLite rows may hold bare ``NaN``/``Infinity``: accepted)."""
    return json.loads(text, object_hook=_untag)


_DRIVERS = {
    "postgres": "postgresql+psycopg",
    "postgresql": "postgresql+psycopg",
    "mysql": "mysql+{mysql}",
    "mariadb": "mariadb+{mysql}",
}


@functools.cache
def mysql_driver() -> str:
    """SQLAlchemy's name of the MySQL/MariaDB driver a plain ``mysql://`` URL gets: mysqlclient
    (``mysqldb``, C: decodes rows ~5x faster) when it is installed, else PyMySQL (pure Python,
    installs anywhere). Looked up, not imported: ``import runstack`` stays light."""
    try:
        found = importlib.util.find_spec("MySQLdb") is not None
    except (ImportError, ValueError):  # (sys.modules["MySQLdb"] = None: blocked)
        found = False
    return "mysqldb" if found else "pymysql"


def normalize_url(url: str | sa.URL) -> sa.URL:
    """A SQLAlchemy URL, with runstack's drivers filled in (``postgresql://`` -> psycopg 3,
    ``mysql://`` -> ``mysql_driver()``); a URL that names its driver is kept as it is."""
    if isinstance(url, str):
        scheme, sep, rest = url.partition("://")
        if sep and scheme in _DRIVERS:
            url = f"{_DRIVERS[scheme].format(mysql=mysql_driver())}://{rest}"
    try:
        return sa.make_url(url)
    except sa.exc.ArgumentError as e:
        raise StoreError(
            f"Not a database URL: {e}. Expected e.g. sqlite:////path/metadata.db, "
            "postgresql+psycopg://user@host:5432/db or mysql://user@host:3306/db."
        ) from None


def configure_sqlite(conn: sqlite3.Connection) -> None:
    """Set up a new connection to an SQLite store: the engine's (``setup_sqlite``) and the
    runner's own (``_inserts.py``) alike."""
    conn.isolation_level = None  # we issue BEGIN ourselves (``setup_sqlite``, ``_inserts``)
    cur = conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    # Checkpoint the -wal into the database every ~40 MB of commits, not every 4 MB (the
    # default): a run's commits rewrite the same few pages, which a checkpoint copies once
    # however often they changed, and each checkpoint waits for the disk (12-21 ms here).
    # That took a step's COMMITs from ~0.35 to ~0.14 ms of wall time on average. Each
    # process still leaves the store checkpointed when done with it (_sqlite_file).
    cur.execute("PRAGMA wal_autocheckpoint=10000")
    cur.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def connect_sqlite(path: Path, connect_args: Mapping[str, Any]) -> sqlite3.Connection:
    """A connection to the SQLite store file ``path`` made as the engine makes its own: what
    SQLAlchemy's pysqlite dialect passes for a file (``check_same_thread=False``: pooled
    connections move between threads), the engine's ``connect_args``, ``configure_sqlite``."""
    conn = sqlite3.connect(str(path), **{"check_same_thread": False, **connect_args})
    try:
        configure_sqlite(conn)
    except BaseException:
        conn.close()
        raise
    return conn


def setup_sqlite(engine: sa.Engine) -> None:
    from sqlalchemy import event

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        configure_sqlite(dbapi_conn)

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
