"""The metadata store: records runs, steps and artifacts in a SQL database via SQLAlchemy Core.

SQLite is the embedded default; PostgreSQL and MySQL/MariaDB use the same tables. Every write
is one short transaction (retried when the database aborts it for a concurrent one); listings
fetch whole groups in one query (no query per object) and filter in the database.
"""

from __future__ import annotations

import contextlib
import random
import sqlite3
import time
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa

from runstack.exceptions import DuplicateRunNameError, StoreError
from runstack.metadata_stores import _engine as _eng
from runstack.metadata_stores import _schema as t
from runstack.metadata_stores import _sqlite_file
from runstack.metadata_stores._engine import (
    ATTEMPTS,
    is_retryable,
    json_dumps,
    json_loads,
    normalize_url,
    setup_sqlite,
)
from runstack.metadata_stores._errors import store_error
from runstack.metadata_stores._inserts import Insert, SQLiteInserts, core_insert
from runstack.metadata_stores._migrate import ensure_schema
from runstack.metadata_stores._params import encode_value, parameter_rows
from runstack.metadata_stores._rows import (
    ARTIFACT_COLUMNS,
    LISTED_STEP_COLUMNS,
    RUN_COLUMNS,
    STEP_COLUMNS,
    artifact_record,
    aware,
    naive,
    run_record,
    status_value,
    step_record,
)
from runstack.models import (
    ArtifactLink,
    ArtifactRecord,
    ExecutionStatus,
    PipelineRecord,
    RunRecord,
    StepRecord,
    StepResult,
)

T = TypeVar("T")


def _orig(e: BaseException) -> BaseException:
    return getattr(e, "orig", None) or e


def _sqlite_path(url: sa.URL) -> Path | None:
    """The file of an SQLite URL; None for other backends and in-memory databases."""
    if url.get_backend_name() != "sqlite":
        return None
    db = url.database
    if not db or db == ":memory:" or db.startswith("file:") or url.query.get("mode") == "memory":
        return None
    return Path(db).expanduser().resolve()


def _close_sqlite(engine: sa.Engine, path: Path) -> None:
    engine.dispose()
    _sqlite_file.checkpoint(path)


def _driver_problem(url: sa.URL, e: Exception) -> str:
    extra = {"postgresql": "postgresql", "mysql": "mysql", "mariadb": "mysql"}.get(
        url.get_backend_name()
    )
    ours = {"postgresql": "postgresql+psycopg", "mysql": "mysql+pymysql"}.get(extra or "")
    hint = (
        f"runstack's driver for it is {ours}: pip install 'runstack[{extra}]'"
        if extra
        else "runstack supports sqlite, postgresql+psycopg and mysql+pymysql"
    )
    what = f"module {e.name!r} is not installed" if isinstance(e, ImportError) else str(e)
    return (
        f"Cannot use the database driver of {url.render_as_string(hide_password=True)} "
        f"({url.drivername}): {what}. {hint}."
    )


class SQLMetadataStore:
    """Records and queries pipeline history in a SQL database given by a SQLAlchemy URL."""

    def __init__(self, url: str | sa.URL, **engine_kwargs: Any) -> None:
        self.url = normalize_url(url)
        backend = self.url.get_backend_name()
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
        self._sqlite_path = _sqlite_path(self.url)
        if self._sqlite_path is not None:
            _sqlite_file.check(self._sqlite_path)
            if not self._sqlite_path.exists():
                aside = lambda tmp: self._open(self.url.set(database=str(tmp)), engine_kwargs)  # noqa: E731
                _sqlite_file.create(self._sqlite_path, lambda tmp: aside(tmp).dispose())
        self._engine = self._open(self.url, engine_kwargs)
        self._sqlite_inserts: SQLiteInserts | None = None
        if self._sqlite_path is not None:
            self._sqlite_inserts = SQLiteInserts(self._engine.dialect)
            # Each process leaves the store as one self-contained file when done with it.
            weakref.finalize(self, _close_sqlite, self._engine, self._sqlite_path)

    def _open(self, url: sa.URL, engine_kwargs: dict[str, Any]) -> sa.Engine:
        """An engine on ``url`` whose schema is current."""
        try:
            engine = sa.create_engine(url, **engine_kwargs)
        except (ImportError, sa.exc.NoSuchModuleError) as e:
            raise StoreError(_driver_problem(url, e)) from None
        if url.get_backend_name() == "sqlite":
            setup_sqlite(engine)
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
        except sa.exc.IntegrityError:
            raise
        except (sa.exc.DBAPIError, sqlite3.Error) as e:
            raise self._error(e) from e

    def __reduce__(self) -> Any:
        # Worker processes (parallel, Ray) reopen the store from its URL; an engine and its
        # connections cannot travel.
        return (type(self), (self.url.render_as_string(hide_password=False),))

    @property
    def display_url(self) -> str:
        """The URL with any password hidden, for messages and listings."""
        return self.url.render_as_string(hide_password=True)

    @property
    def engine(self) -> sa.Engine:
        return self._engine

    def dispose(self) -> None:
        """Close the store's connections (SQLite: after moving its history out of the -wal)."""
        self._engine.dispose()
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
        """Run ``work`` in one write transaction, retried when the database asks for it.

        PostgreSQL and MySQL may abort one of two concurrent transactions (deadlock,
        serialization failure, lock wait timeout); the whole transaction is then run again.
        """
        for attempt in range(ATTEMPTS):
            began = time.monotonic()
            try:
                with self._write() as conn:
                    return work(conn)
            except sa.exc.IntegrityError:
                raise
            except (sa.exc.DBAPIError, sqlite3.Error) as e:
                # (SQLite's BEGIN IMMEDIATE goes straight to the driver: a raw sqlite3 error.)
                if attempt == ATTEMPTS - 1 or not is_retryable(e) or self._waited_out(began):
                    raise self._error(e) from e
                time.sleep(random.uniform(0.01, 0.05) * 2**attempt)
        raise AssertionError("unreachable")

    def _waited_out(self, began: float) -> bool:
        """Whether an SQLite write waited (nearly) its whole busy timeout: the lock is held,
        not contended, and another try would only wait as long again."""
        return (
            self._sqlite_path is not None and time.monotonic() - began >= _eng.BUSY_TIMEOUT_S * 0.8
        )

    @contextlib.contextmanager
    def _read(self) -> Iterator[sa.Connection]:
        with self._errors(), self._engine.connect() as conn:
            yield conn

    # -- writes --------------------------------------------------------------------------

    def create_run(
        self,
        pipeline_name: str,
        run_name: str,
        start_time: datetime,
        *,
        owner_host: str | None = None,
        owner_pid: int | None = None,
        owner_ns: str | None = None,
    ) -> RunRecord:
        """Record a new running run, creating the pipeline on its first run."""
        start = naive(start_time)

        def insert(conn: sa.Connection) -> tuple[int, int]:
            pid = conn.execute(
                sa.select(t.pipelines.c.id).where(t.pipelines.c.name == pipeline_name)
            ).scalar()
            if pid is None:
                pid = conn.execute(
                    t.pipelines.insert().values(name=pipeline_name, created_at=start)
                ).inserted_primary_key[0]  # type: ignore[index]
            run_id = conn.execute(
                t.runs.insert().values(
                    pipeline_id=pid,
                    name=run_name,
                    status=ExecutionStatus.RUNNING.value,
                    start_time=start,
                    owner_host=owner_host,
                    owner_pid=owner_pid,
                    owner_ns=owner_ns,
                    heartbeat_at=start,
                )
            ).inserted_primary_key[0]  # type: ignore[index]
            return pid, run_id

        for _attempt in range(3):
            try:
                pid, run_id = self._transact(insert)
            except sa.exc.IntegrityError:
                with self._read() as conn:
                    taken = conn.execute(
                        sa.select(t.runs.c.id).where(t.runs.c.name == run_name)
                    ).first()
                if taken is not None:
                    raise DuplicateRunNameError(
                        f"A run named {run_name!r} already exists in the metadata store "
                        f"{self.display_url}. Run names are unique; pass another run_name= or "
                        "leave it out to get a timestamped one."
                    ) from None
                continue  # another process created the pipeline at the same moment; retry
            return RunRecord(
                run_id,
                pid,
                pipeline_name,
                run_name,
                ExecutionStatus.RUNNING,
                start_time,
                None,
                None,
                owner_host,
                owner_pid,
                start_time,
                owner_ns,
            )
        raise StoreError(f"Could not record run {run_name!r} in {self.display_url}; retry.")

    def finish_run(
        self, run_id: int, status: ExecutionStatus, end_time: datetime, error: str | None = None
    ) -> None:
        update = (
            t.runs.update()
            .where(t.runs.c.id == run_id)
            .values(status=status.value, end_time=naive(end_time), error=error)
        )
        self._transact(lambda conn: conn.execute(update))

    def start_step(self, result: StepResult) -> int:
        """Record a step as ``running`` (``result`` says which; its end is not used yet), so a
        live or crashed run shows which step is in flight. ``record_step`` replaces the row."""
        row = self._step_row(result) | {"status": ExecutionStatus.RUNNING.value, "end_time": None}
        if self._sqlite_inserts is not None:
            with self._errors():
                return self._sqlite_inserts.transact(
                    self._engine, lambda insert: insert(t.steps, row)
                )
        return self._transact(lambda conn: core_insert(conn)(t.steps, row))

    def record_step(self, result: StepResult) -> tuple[int, dict[str, ArtifactRecord]]:
        """Record one finished step, its new artifacts and its input/output links, atomically.

        A ``running`` row recorded by ``start_step`` (``result.running_step_id``) is replaced
        in the same transaction."""
        if self._sqlite_inserts is not None:
            with self._errors():
                return self._sqlite_inserts.transact(
                    self._engine, lambda insert: self._record_step(insert, result)
                )
        return self._transact(lambda conn: self._record_step(core_insert(conn), result))

    @staticmethod
    def _step_row(result: StepResult) -> dict[str, Any]:
        return {
            "run_id": result.run_id,
            "name": result.name,
            "entrypoint_name": result.entrypoint_name,
            "position": result.position,
            "role": result.role,
            "status": result.status.value,
            "parameters": result.parameters,
            "parent_step_names": list(result.parent_step_names),
            "cache_key": result.cache_key,
            "cache_components": result.cache_components,
            "cached_from_step_id": result.cached_from_step_id,
            "start_time": naive(result.start_time),
            "end_time": naive(result.end_time),
            "error": result.error,
            "traceback": result.traceback,
            "logs_uri": result.logs_uri,
            "execution": result.execution,
        }

    def _record_step(
        self, insert: Insert, result: StepResult
    ) -> tuple[int, dict[str, ArtifactRecord]]:
        if result.running_step_id is not None:
            insert(t.steps, None, delete=result.running_step_id)
        step_id = insert(t.steps, self._step_row(result))
        if result.parameters:
            insert(
                t.step_parameters,
                parameter_rows(step_id, result.run_id, result.name, result.parameters),
            )
        outputs: dict[str, ArtifactRecord] = {}
        for a in result.new_outputs:
            art_id = insert(
                t.artifacts,
                {
                    "uri": a.uri,
                    "data_type": a.data_type,
                    "materializer": a.materializer,
                    "producer_step_id": step_id,
                    "content_hash": a.content_hash,
                    "created_at": naive(result.end_time),
                    "storage_format": a.storage_format,
                },
            )
            outputs[a.name] = ArtifactRecord(
                art_id,
                a.uri,
                a.data_type,
                a.materializer,
                step_id,
                a.content_hash,
                a.storage_format,
            )
        outputs.update(result.reused_outputs)
        order = result.output_order or tuple(outputs)
        if outputs:
            insert(
                t.step_outputs,
                [
                    {"step_id": step_id, "name": n, "position": i, "artifact_id": outputs[n].id}
                    for i, n in enumerate(order)
                ],
            )
        if result.inputs:
            insert(
                t.step_inputs,
                [
                    {"step_id": step_id, "name": n, "position": i, "artifact_id": aid}
                    for i, (n, aid) in enumerate(result.inputs.items())
                ],
            )
        return step_id, outputs

    # -- cache ---------------------------------------------------------------------------

    def cache_candidates(
        self, cache_key: str, limit: int = 3
    ) -> list[tuple[int, dict[str, ArtifactRecord]]]:
        """Most recent successful executions with this cache key, with their outputs."""
        with self._read() as conn:
            ids = list(
                conn.execute(
                    sa.select(t.steps.c.id)
                    .where(
                        t.steps.c.cache_key == cache_key,
                        # Cached rows point at the same artifacts; report the step that wrote them.
                        t.steps.c.status == ExecutionStatus.COMPLETED.value,
                    )
                    .order_by(t.steps.c.id.desc())
                    .limit(limit)
                ).scalars()
            )
            if not ids:
                return []
            links = self._links(conn, t.step_outputs, ids)
        by_step: dict[int, dict[str, ArtifactRecord]] = {i: {} for i in ids}
        for link in links:
            by_step[link.step_id][link.name] = link.artifact
        return [(i, by_step[i]) for i in ids]

    # -- reads ---------------------------------------------------------------------------

    def list_pipelines(self) -> list[PipelineRecord]:
        """Pipelines with at least one run, oldest first run first."""
        with self._read() as conn:
            rows = conn.execute(
                sa.select(t.pipelines.c.id, t.pipelines.c.name, t.pipelines.c.created_at).order_by(
                    t.pipelines.c.created_at, t.pipelines.c.id
                )
            ).all()
        return [PipelineRecord(r[0], r[1], aware(r[2])) for r in rows]  # type: ignore[arg-type]

    def get_pipeline(self, name: str) -> PipelineRecord | None:
        with self._read() as conn:
            r = conn.execute(
                sa.select(t.pipelines.c.id, t.pipelines.c.name, t.pipelines.c.created_at).where(
                    t.pipelines.c.name == name
                )
            ).first()
        return None if r is None else PipelineRecord(r[0], r[1], aware(r[2]))  # type: ignore[arg-type]

    def _runs_query(self) -> sa.Select[Any]:
        return sa.select(*RUN_COLUMNS).join(t.pipelines, t.pipelines.c.id == t.runs.c.pipeline_id)

    def list_runs(
        self,
        pipeline_id: int | None = None,
        *,
        status: ExecutionStatus | str | None = None,
        name_prefix: str | None = None,
        started_after: datetime | None = None,
        started_before: datetime | None = None,
        parameters: Mapping[str, Any] | None = None,
        limit: int | None = None,
        offset: int = 0,
        newest_first: bool = False,
    ) -> list[RunRecord]:
        """Runs matching all the filters, ordered by start time (oldest first unless asked).

        ``parameters`` maps ``"<step>.<parameter>"`` to the value that parameter had, e.g.
        ``{"trainer.lr": 0.1}``; values compare as JSON (``1`` matches ``1.0``).
        """
        q = self._filtered_runs(
            self._runs_query(),
            pipeline_id,
            status,
            name_prefix,
            started_after,
            started_before,
            parameters,
        )
        if newest_first:
            q = q.order_by(t.runs.c.start_time.desc(), t.runs.c.id.desc())
        else:
            q = q.order_by(t.runs.c.start_time, t.runs.c.id)
        if limit is not None:
            q = q.limit(limit)
        if offset:
            q = q.offset(offset)
        with self._read() as conn:
            return [run_record(r) for r in conn.execute(q).all()]

    def count_runs(
        self,
        pipeline_id: int | None = None,
        *,
        status: ExecutionStatus | str | None = None,
        name_prefix: str | None = None,
        started_after: datetime | None = None,
        started_before: datetime | None = None,
        parameters: Mapping[str, Any] | None = None,
    ) -> int:
        """How many runs ``list_runs`` with the same filters would return without a limit."""
        q = self._filtered_runs(
            sa.select(sa.func.count()).select_from(t.runs),
            pipeline_id,
            status,
            name_prefix,
            started_after,
            started_before,
            parameters,
        )
        with self._read() as conn:
            return int(conn.execute(q).scalar_one())

    @staticmethod
    def _filtered_runs(
        q: sa.Select[Any],
        pipeline_id: int | None,
        status: ExecutionStatus | str | None,
        name_prefix: str | None,
        started_after: datetime | None,
        started_before: datetime | None,
        parameters: Mapping[str, Any] | None,
    ) -> sa.Select[Any]:
        """``q`` restricted to the runs matching the filters of ``list_runs``."""
        if pipeline_id is not None:
            q = q.where(t.runs.c.pipeline_id == pipeline_id)
        if status is not None:
            q = q.where(t.runs.c.status == status_value(status))
        for key, value in (parameters or {}).items():
            step_name, dot, name = key.partition(".")
            if not (dot and step_name and name):
                raise StoreError(
                    f"Parameter filters are keyed '<step>.<parameter>', e.g. "
                    f"{{'trainer.lr': 0.1}}; got {key!r}."
                )
            sp = t.step_parameters
            # IN (not a correlated EXISTS): the index finds the matching runs directly.
            q = q.where(
                t.runs.c.id.in_(
                    sa.select(sp.c.run_id).where(
                        sp.c.step_name == step_name,
                        sp.c.name == name,
                        sp.c.value == encode_value(value),
                    )
                )
            )
        if name_prefix:
            escaped = name_prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            q = q.where(t.runs.c.name.like(escaped + "%", escape="\\"))
        if started_after is not None:
            q = q.where(t.runs.c.start_time >= naive(started_after))
        if started_before is not None:
            q = q.where(t.runs.c.start_time < naive(started_before))
        return q

    def get_run(self, name: str, pipeline_id: int | None = None) -> RunRecord | None:
        q = self._runs_query().where(t.runs.c.name == name)
        if pipeline_id is not None:
            q = q.where(t.runs.c.pipeline_id == pipeline_id)
        with self._read() as conn:
            row = conn.execute(q).first()
        return None if row is None else run_record(row)

    def get_run_by_id(self, run_id: int) -> RunRecord | None:
        with self._read() as conn:
            row = conn.execute(self._runs_query().where(t.runs.c.id == run_id)).first()
        return None if row is None else run_record(row)

    def run_names(self, pipeline_id: int) -> list[str]:
        with self._read() as conn:
            return list(
                conn.execute(
                    sa.select(t.runs.c.name)
                    .where(t.runs.c.pipeline_id == pipeline_id)
                    .order_by(t.runs.c.start_time, t.runs.c.id)
                ).scalars()
            )

    def steps_of_runs(
        self,
        run_ids: Sequence[int] | None = None,
        *,
        pipeline_id: int | None = None,
        name: str | None = None,
    ) -> list[StepRecord]:
        """Steps of the given runs (or of every run of a pipeline), in execution order; only
        those whose slot or entrypoint is ``name`` when it is given."""
        q = sa.select(*LISTED_STEP_COLUMNS)
        if name is not None:
            q = q.where(sa.or_(t.steps.c.name == name, t.steps.c.entrypoint_name == name))
        if run_ids is not None:
            q = q.where(t.steps.c.run_id.in_(list(run_ids)))
        else:
            q = q.join(t.runs, t.runs.c.id == t.steps.c.run_id).where(
                t.runs.c.pipeline_id == pipeline_id
            )
        q = q.order_by(t.steps.c.run_id, t.steps.c.position)
        with self._read() as conn:
            return [step_record(r, complete=False) for r in conn.execute(q).all()]

    def get_step_by_id(self, step_id: int) -> StepRecord | None:
        with self._read() as conn:
            row = conn.execute(sa.select(*STEP_COLUMNS).where(t.steps.c.id == step_id)).first()
        return None if row is None else step_record(row)

    def outputs_of_steps(
        self,
        step_ids: Sequence[int] | None = None,
        *,
        pipeline_id: int | None = None,
        step_name: str | None = None,
    ) -> list[ArtifactLink]:
        """Output links of the given steps, or of every step named ``step_name`` in a pipeline."""
        with self._read() as conn:
            if step_ids is not None:
                return self._links(conn, t.step_outputs, step_ids)
            return self._links(conn, t.step_outputs, None, pipeline_id, step_name)

    def inputs_of_steps(self, step_ids: Sequence[int]) -> list[ArtifactLink]:
        with self._read() as conn:
            return self._links(conn, t.step_inputs, step_ids)

    def _links(
        self,
        conn: sa.Connection,
        table: sa.Table,
        step_ids: Sequence[int] | None,
        pipeline_id: int | None = None,
        step_name: str | None = None,
    ) -> list[ArtifactLink]:
        q = sa.select(table.c.step_id, table.c.name, table.c.position, *ARTIFACT_COLUMNS).join(
            t.artifacts, t.artifacts.c.id == table.c.artifact_id
        )
        if step_ids is not None:
            q = q.where(table.c.step_id.in_(list(step_ids)))
        else:
            q = (
                q.join(t.steps, t.steps.c.id == table.c.step_id)
                .join(t.runs, t.runs.c.id == t.steps.c.run_id)
                .where(t.runs.c.pipeline_id == pipeline_id, t.steps.c.name == step_name)
            )
        q = q.order_by(table.c.step_id, table.c.position)
        return [
            ArtifactLink(r[0], r[1], r[2], artifact_record(r, 3)) for r in conn.execute(q).all()
        ]

    def __repr__(self) -> str:
        return f"SQLMetadataStore({self.display_url!r})"

    # -- integrity and cache explanations (issue 4) ---------------------------------------

    def touch_run(self, run_id: int, now: datetime) -> bool:
        """Refresh a running run's heartbeat; False once the run is no longer running."""
        update = (
            t.runs.update()
            .where(t.runs.c.id == run_id, t.runs.c.status == ExecutionStatus.RUNNING.value)
            .values(heartbeat_at=naive(now))
        )
        return bool(self._transact(lambda conn: conn.execute(update).rowcount))

    def mark_run_crashed(
        self,
        run_id: int,
        end_time: datetime,
        error: str,
        *,
        seen_heartbeat: datetime | None = None,
    ) -> bool:
        """Mark a run failed if it is still recorded as running (and, given ``seen_heartbeat``,
        has not beaten since); True if this call changed it."""
        update = (
            t.runs.update()
            .where(t.runs.c.id == run_id, t.runs.c.status == ExecutionStatus.RUNNING.value)
            .values(status=ExecutionStatus.FAILED.value, end_time=naive(end_time), error=error)
        )
        if seen_heartbeat is not None:
            # Decided on a stale heartbeat: a beat that arrived meanwhile proves it alive.
            update = update.where(
                sa.or_(
                    t.runs.c.heartbeat_at.is_(None),
                    t.runs.c.heartbeat_at <= naive(seen_heartbeat),
                )
            )
        return bool(self._transact(lambda conn: conn.execute(update).rowcount))

    def running_runs(self) -> list[tuple[int, str, str | None, int | None, datetime | None]]:
        """``(id, name, owner_host, owner_pid, heartbeat_at)`` of every run marked running."""
        q = (
            sa.select(
                t.runs.c.id,
                t.runs.c.name,
                t.runs.c.owner_host,
                t.runs.c.owner_pid,
                t.runs.c.heartbeat_at,
            )
            .where(t.runs.c.status == ExecutionStatus.RUNNING.value)
            .order_by(t.runs.c.id)
        )
        with self._read() as conn:
            rows = conn.execute(q).all()
        return [(r[0], r[1], r[2], r[3], aware(r[4])) for r in rows]

    def run_names_of_steps(self, step_ids: Sequence[int]) -> dict[int, str]:
        """Name of the run each step belongs to."""
        q = (
            sa.select(t.steps.c.id, t.runs.c.name)
            .join(t.runs, t.runs.c.id == t.steps.c.run_id)
            .where(t.steps.c.id.in_(list(step_ids)))
        )
        with self._read() as conn:
            return {r[0]: r[1] for r in conn.execute(q)}

    def previous_successful_step(self, step_id: int) -> int | None:
        """Id of the latest earlier completed or cached execution of the same pipeline step."""
        me = (
            sa.select(t.steps.c.name, t.runs.c.pipeline_id)
            .join(t.runs, t.runs.c.id == t.steps.c.run_id)
            .where(t.steps.c.id == step_id)
        )
        with self._read() as conn:
            row = conn.execute(me).first()
            if row is None:
                return None
            return conn.execute(
                sa.select(t.steps.c.id)
                .join(t.runs, t.runs.c.id == t.steps.c.run_id)
                .where(
                    t.runs.c.pipeline_id == row[1],
                    t.steps.c.name == row[0],
                    t.steps.c.id < step_id,
                    t.steps.c.status.in_(
                        [ExecutionStatus.COMPLETED.value, ExecutionStatus.CACHED.value]
                    ),
                )
                .order_by(t.steps.c.id.desc())
                .limit(1)
            ).scalar()
