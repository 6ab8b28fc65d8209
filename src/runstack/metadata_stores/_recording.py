"""What the runner needs of the metadata store: record runs and steps, find cache hits.

The driver is the one writer of run and step records; each write is one transaction.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from runstack.exceptions import DuplicateRunNameError, StoreError
from runstack.metadata_stores._connection import SQLConnection
from runstack.metadata_stores._inserts import Insert, core_insert
from runstack.metadata_stores._lazy import LazyModule
from runstack.metadata_stores._params import parameter_rows
from runstack.metadata_stores._rows import link_record, links_sql, naive
from runstack.metadata_stores._tags import check_tags
from runstack.models import ArtifactRecord, ExecutionStatus, RunRecord, StepResult

if TYPE_CHECKING:
    import sqlalchemy as sa

    from runstack.metadata_stores import _schema as t
else:
    sa = LazyModule("sqlalchemy")
    t = LazyModule("runstack.metadata_stores._schema")

T = TypeVar("T")

# Searches ix_steps_cache_key_status (partial where the database allows: cache_key = ? implies
# its cache_key IS NOT NULL); a test checks SQLite's plan uses it.
CACHE_LOOKUP = "SELECT id FROM steps WHERE cache_key = ? AND status = ? ORDER BY id DESC LIMIT ?"


class CacheSourceGoneError(StoreError):
    """The step a cache hit reuses was deleted between the lookup and the record."""


class RunRecording(SQLConnection):
    """Records runs and their steps (with artifacts and links), heartbeats, crashes; answers
    the one question a run asks of history: what may this step reuse."""

    def create_run(
        self,
        pipeline_name: str,
        run_name: str,
        start_time: datetime,
        *,
        owner_host: str | None = None,
        owner_pid: int | None = None,
        owner_ns: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> RunRecord:
        """Record a new running run (with its ``tags``, checked), creating the pipeline on its
        first run."""
        start = naive(start_time)
        tags = check_tags(tags)

        def insert_run(insert: Insert) -> tuple[int, int]:
            pid = insert("pipelines", None, find=("name", pipeline_name))
            if pid is None:
                pid = insert("pipelines", {"name": pipeline_name, "created_at": start})
            run_id = insert(
                "runs",
                {
                    "pipeline_id": pid,
                    "name": run_name,
                    "status": ExecutionStatus.RUNNING.value,
                    "start_time": start,
                    "owner_host": owner_host,
                    "owner_pid": owner_pid,
                    "owner_ns": owner_ns,
                    "heartbeat_at": start,
                },
            )
            if tags:
                insert(
                    "run_tags",
                    [{"run_id": run_id, "key": k, "value": v} for k, v in tags.items()],
                )
            return pid, run_id

        for _attempt in range(3):
            try:
                pid, run_id = self._write_rows(insert_run)
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
        values = {"status": status.value, "end_time": naive(end_time), "error": error}
        self._write_rows(lambda insert: insert("runs", values, update=run_id))

    def start_step(self, result: StepResult) -> int:
        """Record a step as ``running`` (``result`` says which; its end is not used yet), so a
        live or crashed run shows which step is in flight. ``record_step`` replaces the row."""
        row = self._step_row(result) | {"status": ExecutionStatus.RUNNING.value, "end_time": None}
        return self._write_rows(lambda insert: insert("steps", row))

    def record_step(
        self, result: StepResult, *, run_completed_at: datetime | None = None
    ) -> tuple[int, dict[str, ArtifactRecord]]:
        """Record one finished step, its new artifacts and its input/output links, atomically.

        A ``running`` row recorded by ``start_step`` (``result.running_step_id``) is replaced
        in the same transaction (the step keeps its id). ``run_completed_at``: this was the
        run's last step, and the same transaction records the run completed then (one
        transaction less per run than ``finish_run``). A cache hit whose source was deleted
        since it was looked up (``runstack gc`` at that moment) raises
        ``CacheSourceGoneError``, recording nothing."""

        def record(insert: Insert) -> tuple[int, dict[str, ArtifactRecord]]:
            recorded = self._record_step(insert, result)
            if run_completed_at is not None:
                ended = {
                    "status": ExecutionStatus.COMPLETED.value,
                    "end_time": naive(run_completed_at),
                    "error": None,
                }
                insert("runs", ended, update=result.run_id)
            return recorded

        try:
            return self._write_rows(record)
        except sa.exc.IntegrityError as e:
            if result.cached_from_step_id is not None:
                raise CacheSourceGoneError(str(e.orig)) from e
            raise self._refused(result, e) from e

    def record_step_and_start(
        self, result: StepResult, starting: list[StepResult]
    ) -> tuple[int, dict[str, ArtifactRecord], list[int]]:
        """``record_step(result)`` (a step that ran, not a cache hit) and ``start_step`` of each
        of ``starting`` in one transaction: the runner's write when a finished step's successors
        were handed to workers before it was recorded. Returns the step's id and outputs and
        the ``running`` rows' ids, in order; nothing is recorded if any of it fails."""

        def work(insert: Insert) -> tuple[int, dict[str, ArtifactRecord], list[int]]:
            step_id, outputs = self._record_step(insert, result)
            running = [
                self._step_row(r) | {"status": ExecutionStatus.RUNNING.value, "end_time": None}
                for r in starting
            ]
            return step_id, outputs, [insert("steps", row) for row in running]

        try:
            return self._write_rows(work)
        except sa.exc.IntegrityError as e:
            raise self._refused(result, e) from e

    def _refused(self, result: StepResult, e: sa.exc.IntegrityError) -> StoreError:
        """The error for a step record the database refused (a constraint or trigger): nothing
        of the record was written."""
        return StoreError(
            f"The metadata store {self.display_url} refused the record of step "
            f"{result.name!r} of run #{result.run_id} ({e.orig}); nothing of it was recorded "
            "and the run fails. A rule added to the database by hand (a trigger, a "
            "constraint) must go; otherwise report it as a runstack bug."
        )

    def _write_rows(self, work: Callable[[Insert], T]) -> T:
        """Run ``work`` in one write transaction: on SQLite straight on the driver (a few
        statements through Core cost more than SQLite takes to run them), else through Core.
        A constraint violation is an ``sa.exc.IntegrityError`` either way."""
        inserts = self._sqlite_inserts
        if inserts is None:
            return self._transact(lambda conn: work(core_insert(conn)))
        with self._errors():
            try:
                return inserts.transact(work)
            except sqlite3.IntegrityError as e:
                raise sa.exc.IntegrityError(None, None, e) from e

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
        step_id = None
        if result.running_step_id is not None:
            # The `running` row becomes the finished one, in place: deleting it instead would
            # make the database look for rows pointing at it (cached_from_step_id has no
            # index), a scan of every step ever recorded, on every step. What the step was
            # (name, parameters, components...) was written when it started.
            ended: dict[str, Any] = {
                "status": result.status.value,
                "end_time": naive(result.end_time),
                "cache_key": result.cache_key,
                "error": result.error,
                "traceback": result.traceback,
                "logs_uri": result.logs_uri,
                "execution": result.execution,
            }
            # Left out when None (a running row never has one): on SQLite with foreign keys
            # on, an UPDATE naming this self-referencing column, even to NULL, rewrites the
            # row as a delete and an insert (a 20-step chain: 2.9 more -wal pages a step under
            # strace, ~11 us a step in an interleaved A/B).
            if result.cached_from_step_id is not None:
                ended["cached_from_step_id"] = result.cached_from_step_id
            step_id = insert("steps", ended, update=result.running_step_id)
        if step_id is None:  # no running row, or it was removed meanwhile
            step_id = insert("steps", self._step_row(result))
        if result.parameters:
            insert(
                "step_parameters",
                parameter_rows(step_id, result.run_id, result.name, result.parameters),
            )
        outputs: dict[str, ArtifactRecord] = {}
        for a in result.new_outputs:
            art_id = insert(
                "artifacts",
                {
                    "uri": a.uri,
                    "data_type": a.data_type,
                    "materializer": a.materializer,
                    "producer_step_id": step_id,
                    "content_hash": a.content_hash,
                    "created_at": naive(result.end_time),
                    "storage_format": a.storage_format,
                    "inline_data": a.inline,
                    "files": a.files,
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
                a.inline,
                a.files,
            )
        outputs.update(result.reused_outputs)
        order = result.output_order or tuple(outputs)
        if outputs:
            insert(
                "step_outputs",
                [
                    {"step_id": step_id, "name": n, "position": i, "artifact_id": outputs[n].id}
                    for i, n in enumerate(order)
                ],
            )
        if result.inputs:
            insert(
                "step_inputs",
                [
                    {"step_id": step_id, "name": n, "position": i, "artifact_id": aid}
                    for i, (n, aid) in enumerate(result.inputs.items())
                ],
            )
        return step_id, outputs

    def cache_candidates(
        self, cache_key: str, limit: int = 3
    ) -> list[tuple[int, dict[str, ArtifactRecord]]]:
        """Most recent successful executions with this cache key, with their outputs."""
        # Cached rows point at the same artifacts; report the step that wrote them.
        rows = self._fetch(CACHE_LOOKUP, (cache_key, ExecutionStatus.COMPLETED.value, limit))
        ids = [r[0] for r in rows]
        if not ids:
            return []
        by_step: dict[int, dict[str, ArtifactRecord]] = {i: {} for i in ids}
        for row in self._fetch(links_sql("step_outputs", len(ids)), ids):
            link = link_record(row)
            by_step[link.step_id][link.name] = link.artifact
        return [(i, by_step[i]) for i in ids]

    def touch_run(self, run_id: int, now: datetime) -> bool:
        """Refresh a running run's heartbeat; False once the run is no longer running."""
        beat = {"heartbeat_at": naive(now)}
        running = ("status", ExecutionStatus.RUNNING.value)
        done = self._write_rows(lambda insert: insert("runs", beat, update=run_id, where=running))
        return done is not None

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
