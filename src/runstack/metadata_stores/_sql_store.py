"""The metadata store: records runs, steps and artifacts in a SQL database via SQLAlchemy Core.

SQLite is the embedded default; PostgreSQL and MySQL/MariaDB use the same tables. Every write
is one short transaction; listings fetch whole groups in one query (no query per object).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event

from runstack.exceptions import DuplicateRunNameError, StoreError
from runstack.metadata_stores import _schema as t
from runstack.metadata_stores._migrate import ensure_schema
from runstack.models import (
    ArtifactLink,
    ArtifactRecord,
    ExecutionStatus,
    PipelineRecord,
    RunRecord,
    StepRecord,
    StepResult,
)

UTC = timezone.utc


def _naive(dt: datetime | None) -> datetime | None:
    if dt is None or dt.tzinfo is None:
        return dt
    return dt.astimezone(UTC).replace(tzinfo=None)


def _aware(dt: datetime | None) -> datetime | None:
    return None if dt is None else dt.replace(tzinfo=UTC)


def _sqlite_setup(engine: sa.Engine) -> None:
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
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


_RUN_COLUMNS = (
    t.runs.c.id,
    t.runs.c.pipeline_id,
    t.pipelines.c.name,
    t.runs.c.name,
    t.runs.c.status,
    t.runs.c.start_time,
    t.runs.c.end_time,
    t.runs.c.error,
    t.runs.c.owner_host,
    t.runs.c.owner_pid,
)
_STEP_COLUMNS = (
    t.steps.c.id,
    t.steps.c.run_id,
    t.steps.c.name,
    t.steps.c.entrypoint_name,
    t.steps.c.position,
    t.steps.c.status,
    t.steps.c.parameters,
    t.steps.c.cache_key,
    t.steps.c.cached_from_step_id,
    t.steps.c.start_time,
    t.steps.c.end_time,
    t.steps.c.error,
    t.steps.c.traceback,
    t.steps.c.parent_step_names,
    t.steps.c.role,
    t.steps.c.cache_components,
    t.steps.c.logs_uri,
)
_ARTIFACT_COLUMNS = (
    t.artifacts.c.id,
    t.artifacts.c.uri,
    t.artifacts.c.data_type,
    t.artifacts.c.materializer,
    t.artifacts.c.producer_step_id,
    t.artifacts.c.content_hash,
)


def _run(row: Any) -> RunRecord:
    return RunRecord(
        row[0],
        row[1],
        row[2],
        row[3],
        ExecutionStatus(row[4]),
        _aware(row[5]),  # type: ignore[arg-type]
        _aware(row[6]),
        row[7],
        row[8],
        row[9],
    )


def _step(row: Any) -> StepRecord:
    return StepRecord(
        row[0],
        row[1],
        row[2],
        row[3],
        row[4],
        ExecutionStatus(row[5]),
        row[6],
        row[7],
        row[8],
        _aware(row[9]),
        _aware(row[10]),
        row[11],
        row[12],
        tuple(row[13]),  # type: ignore[arg-type]
        row[14],
        row[15],
        row[16],
    )


def _artifact(row: Any, offset: int = 0) -> ArtifactRecord:
    return ArtifactRecord(*row[offset : offset + 6])


class SQLMetadataStore:
    """Records and queries pipeline history in a SQL database given by a SQLAlchemy URL."""

    def __init__(self, url: str | sa.URL, **engine_kwargs: Any) -> None:
        self.url = sa.make_url(url)
        if self.url.get_backend_name() == "sqlite":
            engine_kwargs.setdefault("connect_args", {}).setdefault("timeout", 60)
        else:
            engine_kwargs.setdefault("pool_pre_ping", True)
        self._engine = sa.create_engine(self.url, **engine_kwargs)
        if self.url.get_backend_name() == "sqlite":
            _sqlite_setup(self._engine)
        ensure_schema(self._engine, self.display_url)

    @property
    def display_url(self) -> str:
        """The URL with any password hidden, for messages and listings."""
        return self.url.render_as_string(hide_password=True)

    @property
    def engine(self) -> sa.Engine:
        return self._engine

    def dispose(self) -> None:
        self._engine.dispose()

    @contextlib.contextmanager
    def _write(self) -> Iterator[sa.Connection]:
        with self._engine.connect() as conn:
            conn.execution_options(runstack_write=True)
            with conn.begin():
                yield conn

    @contextlib.contextmanager
    def _read(self) -> Iterator[sa.Connection]:
        with self._engine.connect() as conn:
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
    ) -> RunRecord:
        """Record a new running run, creating the pipeline on its first run."""
        start = _naive(start_time)
        for _attempt in range(3):
            try:
                with self._write() as conn:
                    pid = conn.execute(
                        sa.select(t.pipelines.c.id).where(t.pipelines.c.name == pipeline_name)
                    ).scalar()
                    if pid is None:
                        pid = conn.execute(
                            t.pipelines.insert().values(name=pipeline_name, created_at=start)
                        ).inserted_primary_key[0]
                    run_id = conn.execute(
                        t.runs.insert().values(
                            pipeline_id=pid,
                            name=run_name,
                            status=ExecutionStatus.RUNNING.value,
                            start_time=start,
                            owner_host=owner_host,
                            owner_pid=owner_pid,
                            heartbeat_at=start,
                        )
                    ).inserted_primary_key[0]
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
            )
        raise StoreError(f"Could not record run {run_name!r} in {self.display_url}.")

    def finish_run(
        self, run_id: int, status: ExecutionStatus, end_time: datetime, error: str | None = None
    ) -> None:
        with self._write() as conn:
            conn.execute(
                t.runs.update()
                .where(t.runs.c.id == run_id)
                .values(status=status.value, end_time=_naive(end_time), error=error)
            )

    def record_step(self, result: StepResult) -> tuple[int, dict[str, ArtifactRecord]]:
        """Record one finished step, its new artifacts and its input/output links, atomically."""
        with self._write() as conn:
            step_id = conn.execute(
                t.steps.insert().values(
                    run_id=result.run_id,
                    name=result.name,
                    entrypoint_name=result.entrypoint_name,
                    position=result.position,
                    role=result.role,
                    status=result.status.value,
                    parameters=result.parameters,
                    parent_step_names=list(result.parent_step_names),
                    cache_key=result.cache_key,
                    cache_components=result.cache_components,
                    cached_from_step_id=result.cached_from_step_id,
                    start_time=_naive(result.start_time),
                    end_time=_naive(result.end_time),
                    error=result.error,
                    traceback=result.traceback,
                    logs_uri=result.logs_uri,
                )
            ).inserted_primary_key[0]
            outputs: dict[str, ArtifactRecord] = {}
            for a in result.new_outputs:
                art_id = conn.execute(
                    t.artifacts.insert().values(
                        uri=a.uri,
                        data_type=a.data_type,
                        materializer=a.materializer,
                        producer_step_id=step_id,
                        content_hash=a.content_hash,
                        created_at=_naive(result.end_time),
                    )
                ).inserted_primary_key[0]
                outputs[a.name] = ArtifactRecord(
                    art_id, a.uri, a.data_type, a.materializer, step_id, a.content_hash
                )
            if result.reused_outputs:
                for rec in self.artifacts_by_id(list(result.reused_outputs.values()), conn):
                    for name, aid in result.reused_outputs.items():
                        if aid == rec.id:
                            outputs[name] = rec
            order = result.output_order or tuple(outputs)
            if outputs:
                conn.execute(
                    t.step_outputs.insert(),
                    [
                        {"step_id": step_id, "name": n, "position": i, "artifact_id": outputs[n].id}
                        for i, n in enumerate(order)
                    ],
                )
            if result.inputs:
                conn.execute(
                    t.step_inputs.insert(),
                    [
                        {"step_id": step_id, "name": n, "position": i, "artifact_id": aid}
                        for i, (n, aid) in enumerate(result.inputs.items())
                    ],
                )
            conn.execute(
                t.runs.update()
                .where(t.runs.c.id == result.run_id)
                .values(heartbeat_at=_naive(result.end_time))
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
        return [PipelineRecord(r[0], r[1], _aware(r[2])) for r in rows]  # type: ignore[arg-type]

    def get_pipeline(self, name: str) -> PipelineRecord | None:
        with self._read() as conn:
            r = conn.execute(
                sa.select(t.pipelines.c.id, t.pipelines.c.name, t.pipelines.c.created_at).where(
                    t.pipelines.c.name == name
                )
            ).first()
        return None if r is None else PipelineRecord(r[0], r[1], _aware(r[2]))  # type: ignore[arg-type]

    def _runs_query(self) -> sa.Select[Any]:
        return sa.select(*_RUN_COLUMNS).join(t.pipelines, t.pipelines.c.id == t.runs.c.pipeline_id)

    def list_runs(
        self,
        pipeline_id: int | None = None,
        *,
        status: ExecutionStatus | str | None = None,
        name_prefix: str | None = None,
        started_after: datetime | None = None,
        started_before: datetime | None = None,
        limit: int | None = None,
        offset: int = 0,
        newest_first: bool = False,
    ) -> list[RunRecord]:
        """Runs matching the filters, ordered by start time (oldest first unless asked)."""
        q = self._runs_query()
        if pipeline_id is not None:
            q = q.where(t.runs.c.pipeline_id == pipeline_id)
        if status is not None:
            q = q.where(t.runs.c.status == ExecutionStatus(status).value)
        if name_prefix:
            escaped = name_prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            q = q.where(t.runs.c.name.like(escaped + "%", escape="\\"))
        if started_after is not None:
            q = q.where(t.runs.c.start_time >= _naive(started_after))
        if started_before is not None:
            q = q.where(t.runs.c.start_time < _naive(started_before))
        if newest_first:
            q = q.order_by(t.runs.c.start_time.desc(), t.runs.c.id.desc())
        else:
            q = q.order_by(t.runs.c.start_time, t.runs.c.id)
        if limit is not None:
            q = q.limit(limit)
        if offset:
            q = q.offset(offset)
        with self._read() as conn:
            return [_run(r) for r in conn.execute(q)]

    def get_run(self, name: str, pipeline_id: int | None = None) -> RunRecord | None:
        q = self._runs_query().where(t.runs.c.name == name)
        if pipeline_id is not None:
            q = q.where(t.runs.c.pipeline_id == pipeline_id)
        with self._read() as conn:
            row = conn.execute(q).first()
        return None if row is None else _run(row)

    def get_run_by_id(self, run_id: int) -> RunRecord | None:
        with self._read() as conn:
            row = conn.execute(self._runs_query().where(t.runs.c.id == run_id)).first()
        return None if row is None else _run(row)

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
        self, run_ids: Sequence[int] | None = None, *, pipeline_id: int | None = None
    ) -> list[StepRecord]:
        """Steps of the given runs (or of every run of a pipeline), in execution order."""
        q = sa.select(*_STEP_COLUMNS)
        if run_ids is not None:
            q = q.where(t.steps.c.run_id.in_(list(run_ids)))
        else:
            q = q.join(t.runs, t.runs.c.id == t.steps.c.run_id).where(
                t.runs.c.pipeline_id == pipeline_id
            )
        q = q.order_by(t.steps.c.run_id, t.steps.c.position)
        with self._read() as conn:
            return [_step(r) for r in conn.execute(q)]

    def get_step_by_id(self, step_id: int) -> StepRecord | None:
        with self._read() as conn:
            row = conn.execute(sa.select(*_STEP_COLUMNS).where(t.steps.c.id == step_id)).first()
        return None if row is None else _step(row)

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
        q = sa.select(table.c.step_id, table.c.name, table.c.position, *_ARTIFACT_COLUMNS).join(
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
        return [ArtifactLink(r[0], r[1], r[2], _artifact(r, 3)) for r in conn.execute(q)]

    def artifacts_by_id(
        self, ids: Sequence[int], conn: sa.Connection | None = None
    ) -> list[ArtifactRecord]:
        q = sa.select(*_ARTIFACT_COLUMNS).where(t.artifacts.c.id.in_(list(ids)))
        if conn is not None:
            return [_artifact(r) for r in conn.execute(q)]
        with self._read() as c:
            return [_artifact(r) for r in c.execute(q)]

    def __repr__(self) -> str:
        return f"SQLMetadataStore({self.display_url!r})"
