"""The metadata store's connection: engine set-up per backend, errors that teach, and the
one way to run a write transaction (retried) or a read.

SQLite is the embedded default; PostgreSQL and MySQL/MariaDB use the same tables. Every write
is one short transaction, retried when the database aborts it for a concurrent one.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import os
import re
import sqlite3
import threading
import weakref
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from runstack.exceptions import StoreError
from runstack.metadata_stores import _engine as _eng
from runstack.metadata_stores import _sqlite_file
from runstack.metadata_stores._engine import (
    connect_sqlite,
    is_driver_error,
    is_integrity_error,
    json_dumps,
    json_loads,
    normalize_url,
    retried,
    setup_sqlite,
)
from runstack.metadata_stores._errors import store_error
from runstack.metadata_stores._inserts import SQLiteInserts
from runstack.metadata_stores._lazy import LazyModule
from runstack.metadata_stores._migrate import SCHEMA_REVISION, ensure_schema

if TYPE_CHECKING:
    import sqlalchemy as sa
else:
    sa = LazyModule("sqlalchemy")

T = TypeVar("T")


def _orig(e: BaseException) -> BaseException:
    return getattr(e, "orig", None) or e


# ``sqlite:///<path>`` whose path SQLAlchemy would take and render unchanged (no quoting, no
# query, not in memory): opened without parsing it through SQLAlchemy.
_PLAIN_SQLITE = re.compile(r"sqlite:///([A-Za-z0-9_./~-]+)")


def _plain_sqlite_database(url: str | sa.URL) -> str | None:
    """The database of a plain SQLite file URL, as ``sa.make_url(url).database`` gives it; None
    for any other URL (those are parsed by SQLAlchemy)."""
    m = _PLAIN_SQLITE.fullmatch(url) if isinstance(url, str) else None
    if m is None or m.group(1) == ":memory:":
        return None
    return m.group(1)


def _sqlite_path(url: sa.URL) -> Path | None:
    """The file of an SQLite URL; None for other backends and in-memory databases."""
    if url.get_backend_name() != "sqlite":
        return None
    db = url.database
    if not db or db == ":memory:" or db.startswith("file:") or url.query.get("mode") == "memory":
        return None
    return Path(db).expanduser().resolve()


def _close(lazy: dict[str, Any], raw: list[sqlite3.Connection]) -> None:
    """Close every connection a store holds: the runner's held write connections, the raw read
    connections of ``_fetch`` and the engine's pool (what of them was made)."""
    if lazy.get("inserts") is not None:
        lazy["inserts"].release()
    _close_raw(raw)
    if "engine" in lazy:
        lazy["engine"].dispose()


def _close_sqlite(lazy: dict[str, Any], path: Path, raw: list[sqlite3.Connection]) -> None:
    _close(lazy, raw)
    _sqlite_file.checkpoint(path)


def _close_raw(raw: list[sqlite3.Connection]) -> None:
    while raw:
        raw.pop().close()


@functools.lru_cache(maxsize=512)
def _format_sql(sql: str, mysql: bool) -> str:
    """``sql`` (written with ``?`` placeholders and ``"quoted"`` names, never ``?``, ``%`` or
    ``"`` inside a literal) for the ``format`` paramstyle of psycopg, PyMySQL and mysqlclient."""
    out = sql.replace("%", "%%").replace("?", "%s")
    return out.replace('"', "`") if mysql else out


def _driver_problem(url: sa.URL, e: Exception) -> str:
    backend = url.get_backend_name()
    if backend == "postgresql":
        hint = "runstack's driver for it is postgresql+psycopg: pip install 'runstack[postgresql]'"
    elif backend in ("mysql", "mariadb"):
        hint = (
            "runstack's drivers for it are PyMySQL (pure Python, installs anywhere: "
            "pip install 'runstack[mysql]') and the faster mysqlclient (pip install "
            "'runstack[mysqlclient]', which builds against the MariaDB/MySQL client headers: "
            "apt-get install libmariadb-dev pkg-config); a plain mysql:// URL takes mysqlclient "
            "when it is installed"
        )
    else:
        hint = "runstack supports sqlite, postgresql+psycopg, mysql+pymysql and mysql+mysqldb"
    what = f"module {e.name!r} is not installed" if isinstance(e, ImportError) else str(e)
    return (
        f"Cannot use the database driver of {url.render_as_string(hide_password=True)} "
        f"({url.drivername}): {what}. {hint}."
    )


class SQLConnection:
    """A SQL database given by a SQLAlchemy URL, with a current schema."""

    def __init__(self, url: str | sa.URL, **engine_kwargs: Any) -> None:
        plain = _plain_sqlite_database(url)
        if plain is not None:  # no SQLAlchemy needed to read a current store
            self._url: sa.URL | None = None
            self._url_text = str(url)
            self._display = self._url_text
            backend = "sqlite"
            self._sqlite_path: Path | None = Path(plain).expanduser().resolve()
        else:
            self._url = normalize_url(url)
            # Without the driver filled in when none was named: a worker reopening a plain
            # mysql:// URL picks the driver it has (``_engine.mysql_driver``).
            scheme = url.partition("://")[0] if isinstance(url, str) else url.drivername
            reopen = self._url if "+" in scheme else self._url.set(drivername=scheme)
            self._url_text = reopen.render_as_string(hide_password=False)
            self._display = self._url.render_as_string(hide_password=True)
            backend = self._url.get_backend_name()
            self._sqlite_path = _sqlite_path(self._url)
        self._backend = backend
        engine_kwargs.setdefault("json_serializer", json_dumps)
        engine_kwargs.setdefault("json_deserializer", json_loads)
        if backend == "sqlite":
            engine_kwargs.setdefault("connect_args", {}).setdefault("timeout", 60)
        else:
            engine_kwargs.setdefault("pool_pre_ping", True)
        if backend in ("mysql", "mariadb"):
            # Fewer gap locks than REPEATABLE READ: concurrent writers of runs rarely deadlock.
            engine_kwargs.setdefault("isolation_level", "READ COMMITTED")
            engine_kwargs.setdefault("pool_recycle", 3600)
        self._engine_kwargs = engine_kwargs
        #: What is made on first use: "engine" (SQLAlchemy's) and, on SQLite, "inserts" (the
        #: runner's writes, on sqlite3 connections of their own: no engine needed).
        self._lazy: dict[str, Any] = {}
        self._lazy_lock = threading.Lock()
        # Idle stdlib sqlite3 connections for ``_fetch`` (one per thread reading at once).
        self._raw: list[sqlite3.Connection] = []
        self._raw_pid = os.getpid()
        self._mysql = backend in ("mysql", "mariadb")
        self._format = backend != "sqlite"  # psycopg and the MySQL drivers take %s, not ?
        #: URI of the SQLite file ``_fetch`` reads with stdlib sqlite3 (None: the engine's).
        self._raw_uri = None if self._sqlite_path is None else self._sqlite_path.as_uri()
        #: Called with the SQL text of every statement ``_fetch`` runs (tests count them).
        self.statement_hooks: list[Callable[[str], None]] = []
        if self._sqlite_path is None:
            self._lazy["engine"] = self._open(self.url, engine_kwargs)
            return
        _sqlite_file.check(self._sqlite_path)
        if not self._sqlite_path.exists():
            aside = lambda tmp: self._open(self.url.set(database=str(tmp)), engine_kwargs)  # noqa: E731
            _sqlite_file.create(self._sqlite_path, lambda tmp: aside(tmp).dispose())
        # Each process leaves the store as one self-contained file when done with it.
        weakref.finalize(self, _close_sqlite, self._lazy, self._sqlite_path, self._raw)
        # A current store is read and recorded to without SQLAlchemy: the engine is made when
        # a cold query or a rare write (curation, gc) first needs it; any other store (no
        # schema yet, older, newer) goes through ``_open`` now, as every store on a server does.
        if self._schema_revision() != SCHEMA_REVISION:
            self._lazy["engine"] = self._open(self.url, engine_kwargs)

    def _schema_revision(self) -> str | None:
        """The store's schema revision read with stdlib sqlite3 (None: no schema yet)."""
        try:
            rows = self._fetch("SELECT version_num FROM alembic_version")
        except StoreError as e:
            if "no such table" in str(e):
                return None
            raise
        return rows[0][0] if rows else None

    @property
    def url(self) -> sa.URL:
        """The store's SQLAlchemy URL."""
        if self._url is None:
            self._url = normalize_url(self._url_text)
        return self._url

    @property
    def _engine(self) -> sa.Engine:
        """SQLAlchemy's engine, made on first use (the schema is current by then)."""
        engine = self._lazy.get("engine")
        if engine is None:
            with self._lazy_lock:
                engine = self._lazy.get("engine")
                if engine is None:
                    engine = self._lazy["engine"] = self._create_engine(
                        self.url, self._engine_kwargs
                    )
        return engine

    @property
    def _sqlite_inserts(self) -> SQLiteInserts | None:
        """The runner's writes straight to sqlite3 (SQLite files only), made on first use."""
        path = self._sqlite_path
        if path is None:
            return None
        try:
            return self._lazy["inserts"]
        except KeyError:
            connect_args = self._engine_kwargs.get("connect_args", {})
            with self._lazy_lock:
                if "inserts" not in self._lazy:
                    connect = functools.partial(connect_sqlite, path, connect_args)
                    self._lazy["inserts"] = SQLiteInserts(connect)
                return self._lazy["inserts"]

    @_sqlite_inserts.setter
    def _sqlite_inserts(self, inserts: SQLiteInserts | None) -> None:
        self._lazy["inserts"] = inserts  # (None: writes through SQLAlchemy Core)

    def _create_engine(self, url: sa.URL, engine_kwargs: dict[str, Any]) -> sa.Engine:
        try:
            engine = sa.create_engine(url, **engine_kwargs)
        except (ImportError, sa.exc.NoSuchModuleError) as e:
            fallback = self._pymysql_instead(url)
            if fallback is None:
                raise StoreError(_driver_problem(url, e)) from None
            return self._create_engine(fallback, engine_kwargs)
        if url.get_backend_name() == "sqlite":
            setup_sqlite(engine)
        return engine

    def _pymysql_instead(self, url: sa.URL) -> sa.URL | None:
        """For a plain ``mysql://`` URL given mysqlclient (``_engine.mysql_driver`` found it
        installed) that does not load (its C library missing, say): the same URL on PyMySQL,
        when that is installed, as before mysqlclient was preferred. None otherwise."""
        backend = url.get_backend_name()
        named = "+" in self._url_text.partition("://")[0]
        if named or url.drivername != f"{backend}+mysqldb":
            return None
        try:
            if importlib.util.find_spec("pymysql") is None:
                return None
        except (ImportError, ValueError):  # (sys.modules["pymysql"] = None: blocked)
            return None
        fallback = url.set(drivername=f"{backend}+pymysql")
        if url == self._url:  # (not a copy aside, as a new SQLite file's)
            self._url = fallback
            self._display = fallback.render_as_string(hide_password=True)
        return fallback

    def _open(self, url: sa.URL, engine_kwargs: dict[str, Any]) -> sa.Engine:
        """An engine on ``url`` whose schema is current."""
        engine = self._create_engine(url, engine_kwargs)
        try:
            ensure_schema(engine, self.display_url)
        except BaseException as e:
            engine.dispose()  # no pooled connection left behind for the garbage collector
            if isinstance(e, StoreError) or not isinstance(e, (sa.exc.DBAPIError, sqlite3.Error)):
                raise
            if self._sqlite_path is None and isinstance(
                e, (sa.exc.OperationalError, sa.exc.InterfaceError)
            ):
                raise StoreError(
                    f"Cannot open the metadata store at {self.display_url}: {_orig(e)}. Check "
                    "that the database server is running and reachable, that the database "
                    "exists, and the user and password (settings or environment variables) "
                    "are right."
                ) from e
            raise self._error(e) from e
        return engine

    def _error(self, e: BaseException) -> StoreError:
        return store_error(e, self.display_url, self._sqlite_path, _eng.BUSY_TIMEOUT_S)

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        """Driver errors as StoreErrors that say what to do (IntegrityError passes: callers
        decide what a taken name means)."""
        try:
            yield
        except Exception as e:
            if is_integrity_error(e) or not is_driver_error(e):
                raise
            raise self._error(e) from e

    def __reduce__(self) -> Any:
        # Worker processes (parallel, Ray) reopen the store from its URL; an engine and its
        # connections cannot travel.
        return (type(self), (self._url_text,))

    @property
    def display_url(self) -> str:
        """The URL with any password hidden, for messages and listings."""
        return self._display

    @property
    def engine(self) -> sa.Engine:
        return self._engine

    def dispose(self) -> None:
        """Close the store's connections (SQLite: after moving its history out of the -wal)."""
        _close(self._lazy, self._raw)
        if self._sqlite_path is not None:
            _sqlite_file.checkpoint(self._sqlite_path)

    def backup(self, dest: str | Path) -> Path:
        """Copy an SQLite store, consistently even while runs write to it, into file ``dest``."""
        if self._sqlite_path is None:
            raise StoreError(
                f"The metadata store {self.display_url} is a database server's; back it up with "
                "the server's tools (pg_dump for PostgreSQL, mysqldump or mariadb-dump for MySQL)."
            )
        target = Path(dest).expanduser().resolve()
        _sqlite_file.backup(self._sqlite_path, target)
        return target

    @contextlib.contextmanager
    def _write(self) -> Iterator[sa.Connection]:
        """One write transaction (SQLite: taking the write lock up front)."""
        with self._engine.connect() as conn:
            conn.execution_options(runstack_write=True)
            with conn.begin():
                yield conn

    def _transact(self, work: Callable[[sa.Connection], T]) -> T:
        """Run ``work`` in one write transaction, run again when the database aborts it for a
        concurrent one (``_engine.retried``); driver errors become StoreErrors."""

        def once() -> T:
            with self._write() as conn:
                return work(conn)

        with self._errors():
            return retried(once, sqlite=self._sqlite_path is not None)

    def _fetch(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        """The rows of one read-only statement, run through the DB-API without SQLAlchemy's
        statement and row machinery (a tenth of a history scan's time went there).

        The hot history queries are written once as plain SQL text: ``?`` placeholders,
        ``"quoted"`` names where a backend reserves one. SQLite runs them on stdlib sqlite3
        connections of the store's file (autocommit: each statement reads one snapshot);
        PostgreSQL and MySQL on a raw connection of the engine's pool, which returns it
        rolled back. Driver errors become StoreErrors as everywhere else."""
        for hook in self.statement_hooks:
            hook(sql)
        try:
            if self._raw_uri is not None:
                if self._raw_pid != os.getpid():  # forked: the parent's are not for us
                    self._raw.clear()
                    self._raw_pid = os.getpid()
                try:
                    conn = self._raw.pop()  # atomic: threads never share one
                except IndexError:
                    conn = self._raw_sqlite()
                try:
                    return conn.execute(sql, params).fetchall()
                finally:
                    self._raw.append(conn)
            raw = self._engine.raw_connection()
            try:
                cur = raw.cursor()
                cur.execute(_format_sql(sql, self._mysql) if self._format else sql, tuple(params))
                rows = list(cur.fetchall())
                cur.close()
                return rows
            finally:
                raw.close()
        except sqlite3.Error as e:
            raise self._error(e) from e
        except Exception as e:
            # (On SQLite the driver's errors are sqlite3's, above: no engine made for this.)
            if self._raw_uri is None and isinstance(e, self._engine.dialect.loaded_dbapi.Error):
                raise self._error(e) from e
            raise

    def _raw_sqlite(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self._raw_uri,  # type: ignore[arg-type]
            uri=True,
            timeout=_eng.BUSY_TIMEOUT_S,
            isolation_level=None,
            check_same_thread=False,  # taken by one thread at a time from ``_raw``
        )
        conn.execute("PRAGMA query_only=ON")  # reads only, whatever a caller passes
        return conn

    @contextlib.contextmanager
    def _read(self) -> Iterator[sa.Connection]:
        with self._errors(), self._engine.connect() as conn:
            yield conn

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.display_url!r})"
