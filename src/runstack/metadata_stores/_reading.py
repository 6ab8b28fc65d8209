"""What readers need of the metadata store: history queries, few round trips each.

Listings fetch whole groups in one query (no query per object) and filter in the database,
by one ``RunFilter`` value.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from runstack.metadata_stores._connection import SQLConnection
from runstack.metadata_stores._filter import RunFilter
from runstack.metadata_stores._lazy import LazyModule
from runstack.metadata_stores._params import encode_value
from runstack.metadata_stores._rows import (
    ARTIFACT_SQL,
    LISTED_STEP_SQL,
    READABLE_ARTIFACT_SQL,
    RUN_SQL,
    STEP_SQL,
    artifact_record,
    aware,
    link_record,
    links_sql,
    marks,
    naive,
    run_record,
    sqlite_time,
    step_record,
)
from runstack.models import (
    ArtifactLink,
    ExecutionStatus,
    PipelineRecord,
    RunRecord,
    StepRecord,
)

if TYPE_CHECKING:
    import sqlalchemy as sa

    from runstack.metadata_stores import _columns as cols
    from runstack.metadata_stores import _schema as t
else:
    sa = LazyModule("sqlalchemy")
    t = LazyModule("runstack.metadata_stores._schema")
    cols = LazyModule("runstack.metadata_stores._columns")


def _of_runs(run_ids: Sequence[int] | None, pipeline_id: int | None) -> tuple[str, str, list[Any]]:
    """What selects steps ``s`` of the given runs, or of every run of a pipeline: a join to
    add after ``FROM steps s`` (or ""), a condition and its parameters."""
    if run_ids is not None:
        return "", f"s.run_id IN ({marks(len(run_ids))})", list(run_ids)
    return " JOIN runs r ON r.id = s.run_id", "r.pipeline_id = ?", [pipeline_id]


class HistoryReading(SQLConnection):
    """Queries over recorded pipelines, runs, steps and artifacts; never a write.

    The hot ones (what browsing and a history scan run) are plain SQL text run through
    ``_fetch``; the rarer ones are SQLAlchemy statements."""

    def list_pipelines(self) -> list[PipelineRecord]:
        """Pipelines with at least one run, oldest first run first."""
        rows = self._fetch("SELECT id, name, created_at FROM pipelines ORDER BY created_at, id")
        return [PipelineRecord(r[0], r[1], aware(r[2])) for r in rows]  # type: ignore[arg-type]

    def get_pipeline(self, name: str) -> PipelineRecord | None:
        rows = self._fetch("SELECT id, name, created_at FROM pipelines WHERE name = ?", (name,))
        return None if not rows else PipelineRecord(rows[0][0], rows[0][1], aware(rows[0][2]))  # type: ignore[arg-type]

    def list_runs(
        self, pipeline_id: int | None = None, where: RunFilter | None = None
    ) -> list[RunRecord]:
        """Runs (of one pipeline, or of all) that ``where`` selects, in its order and page."""
        f = where or RunFilter()
        cond, params = self._filtered(pipeline_id, f)
        order = " DESC" if f.newest_first else ""
        sql = f"{RUN_SQL}{cond} ORDER BY r.start_time{order}, r.id{order}"
        if f.limit is not None or f.offset:
            # (Every backend takes LIMIT n OFFSET m; a huge n stands for "no limit".)
            sql += " LIMIT ? OFFSET ?"
            params += [f.limit if f.limit is not None else 2**62, f.offset]
        return [run_record(r) for r in self._fetch(sql, params)]

    def list_run_ids(self, pipeline_id: int, newest_first: bool = False) -> list[int]:
        """Ids of every run of a pipeline, oldest first unless ``newest_first`` (from the index
        alone: a whole history's listing loads its records only when one is needed)."""
        order = " DESC" if newest_first else ""
        rows = self._fetch(
            f"SELECT id FROM runs WHERE pipeline_id = ? ORDER BY start_time{order}, id{order}",
            (pipeline_id,),
        )
        return [r[0] for r in rows]

    def scan_steps(
        self,
        name: str,
        run_ids: Sequence[int] | None = None,
        *,
        pipeline_id: int | None = None,
        entrypoint: bool = False,
    ) -> list[Any]:
        """The "one step of every run" pattern: ``(id, run id)`` of each step in slot
        ``name`` (found from the index alone), or with ``entrypoint`` ``(id, run id, slot)``
        of each step in another slot running entrypoint ``name`` (every step row is read), of
        the given runs or of every run of a pipeline (the rest of each record is read when
        needed)."""
        join, cond, params = _of_runs(run_ids, pipeline_id)
        if entrypoint:
            sql = f"SELECT s.id, s.run_id, s.name FROM steps s{join} WHERE {cond}"
            sql += " AND s.entrypoint_name = ? AND s.name <> ?"
            params += [name, name]
        else:
            sql = f"SELECT s.id, s.run_id FROM steps s{join} WHERE {cond} AND s.name = ?"
            params.append(name)
        return self._fetch(sql, params)

    def scan_outputs(
        self,
        slots: Sequence[str],
        output: str,
        run_ids: Sequence[int] | None = None,
        *,
        pipeline_id: int | None = None,
        readable: bool = False,
    ) -> list[Any]:
        """Output ``output``, with its artifact, of the steps in ``slots`` (of the given runs,
        or of every run of a pipeline): ``(step id, <artifact columns>)`` rows
        (``artifact_record(row, 1)``), or with ``readable`` only what reading a value kept
        inline needs (``readable_artifact(row, 1)``). By slot, not entrypoint: the steps are
        found from the index alone, their rows unread."""
        join, cond, params = _of_runs(run_ids, pipeline_id)
        sql = (
            f"SELECT o.step_id, {READABLE_ARTIFACT_SQL if readable else ARTIFACT_SQL} "
            "FROM steps s JOIN step_outputs o ON o.step_id = s.id "
            f"JOIN artifacts a ON a.id = o.artifact_id{join} WHERE {cond} "
            f"AND s.name IN ({marks(len(slots))}) AND o.name = ?"
        )
        return self._fetch(sql, [*params, *slots, output])

    def count_runs(self, pipeline_id: int | None = None, where: RunFilter | None = None) -> int:
        """How many runs ``list_runs`` would return for ``where`` without its page."""
        cond, params = self._filtered(pipeline_id, where or RunFilter())
        return int(self._fetch(f"SELECT count(*) FROM runs r{cond}", params)[0][0])

    def _time_param(self, dt: datetime | None) -> Any:
        """A time as the column holds it: SQLite stores text as SQLAlchemy writes it."""
        dt = naive(dt)
        return sqlite_time(dt) if self._backend == "sqlite" else dt

    def _filtered(self, pipeline_id: int | None, f: RunFilter) -> tuple[str, list[Any]]:
        """`` WHERE ...`` (or "") selecting the runs ``r`` (of one pipeline, or of all) that
        ``f`` selects, and its parameters."""
        conds: list[str] = []
        params: list[Any] = []
        if pipeline_id is not None:
            conds.append("r.pipeline_id = ?")
            params.append(pipeline_id)
        if f.status is not None:
            conds.append("r.status = ?")
            params.append(ExecutionStatus(f.status).value)
        for key, value in (f.parameters or {}).items():
            step_name, _, name = key.partition(".")
            # IN (not a correlated EXISTS): the index finds the matching runs directly.
            conds.append(
                "r.id IN (SELECT sp.run_id FROM step_parameters sp "
                "WHERE sp.step_name = ? AND sp.name = ? AND sp.value = ?)"
            )
            params += [step_name, name, encode_value(value)]
        for key, value in (f.tags or {}).items():
            conds.append(
                'r.id IN (SELECT rt.run_id FROM run_tags rt WHERE rt."key" = ? AND rt.value = ?)'
            )
            params += [key, value]
        if f.name_prefix:
            # "!" escapes: a backslash means different things in MySQL's string literals.
            escaped = f.name_prefix.replace("!", "!!").replace("_", "!_")
            conds.append("r.name LIKE ? ESCAPE '!'")
            params.append(escaped.replace("%", "!%") + "%")
        if f.started_after is not None:
            conds.append("r.start_time >= ?")
            params.append(self._time_param(f.started_after))
        if f.started_before is not None:
            conds.append("r.start_time < ?")
            params.append(self._time_param(f.started_before))
        return (" WHERE " + " AND ".join(conds) if conds else ""), params

    def tags_of_runs(self, run_ids: Sequence[int]) -> dict[int, dict[str, str]]:
        """Each run's tags (runs without any are left out), keys in sorted order."""
        out: dict[int, dict[str, str]] = {}
        if not run_ids:
            return out
        rows = self._fetch(
            f'SELECT run_id, "key", value FROM run_tags WHERE run_id IN ({marks(len(run_ids))}) '
            'ORDER BY run_id, "key"',
            list(run_ids),
        )
        for run_id, key, value in rows:
            out.setdefault(run_id, {})[key] = value
        return out

    def get_run(self, name: str, pipeline_id: int | None = None) -> RunRecord | None:
        if pipeline_id is None:
            rows = self._fetch(f"{RUN_SQL} WHERE r.name = ?", (name,))
        else:
            rows = self._fetch(
                f"{RUN_SQL} WHERE r.name = ? AND r.pipeline_id = ?", (name, pipeline_id)
            )
        return run_record(rows[0]) if rows else None

    def get_run_by_id(self, run_id: int) -> RunRecord | None:
        rows = self._fetch(f"{RUN_SQL} WHERE r.id = ?", (run_id,))
        return run_record(rows[0]) if rows else None

    def run_names(self, pipeline_id: int) -> list[str]:
        rows = self._fetch(
            "SELECT name FROM runs WHERE pipeline_id = ? ORDER BY start_time, id", (pipeline_id,)
        )
        return [r[0] for r in rows]

    def steps_of_runs(
        self,
        run_ids: Sequence[int] | None = None,
        *,
        pipeline_id: int | None = None,
        name: str | None = None,
    ) -> list[StepRecord]:
        """Steps of the given runs (or of every run of a pipeline), in execution order; only
        those whose slot or entrypoint is ``name`` when it is given."""
        if run_ids is not None and not run_ids:
            return []
        join, cond, params = _of_runs(run_ids, pipeline_id)
        sql = f"SELECT {LISTED_STEP_SQL} FROM steps s{join} WHERE {cond}"
        if name is not None:
            sql += " AND (s.name = ? OR s.entrypoint_name = ?)"
            params += [name, name]
        sql += " ORDER BY s.run_id, s.position"
        return [step_record(r, complete=False) for r in self._fetch(sql, params)]

    def _runs_query(self) -> sa.Select[Any]:
        return sa.select(*cols.RUN_COLUMNS).join(
            t.pipelines, t.pipelines.c.id == t.runs.c.pipeline_id
        )

    def get_step_by_id(self, step_id: int) -> StepRecord | None:
        rows = self._fetch(f"SELECT {STEP_SQL} FROM steps s WHERE s.id = ?", (step_id,))
        return step_record(rows[0]) if rows else None

    def outputs_of_steps(
        self,
        step_ids: Sequence[int] | None = None,
        *,
        pipeline_id: int | None = None,
        step_name: str | None = None,
    ) -> list[ArtifactLink]:
        """Output links of the given steps, or of every step named ``step_name`` in a pipeline."""
        return self._links("step_outputs", step_ids, pipeline_id, step_name)

    def inputs_of_steps(self, step_ids: Sequence[int]) -> list[ArtifactLink]:
        return self._links("step_inputs", step_ids)

    def _links(
        self,
        table: str,
        step_ids: Sequence[int] | None,
        pipeline_id: int | None = None,
        step_name: str | None = None,
    ) -> list[ArtifactLink]:
        """Input or output links (by ``table``) of the given steps, or of every step named
        ``step_name`` in a pipeline, in step then declared order."""
        if step_ids is None:
            rows = self._fetch(links_sql(table, None), (pipeline_id, step_name))
        elif step_ids:
            rows = self._fetch(links_sql(table, len(step_ids)), list(step_ids))
        else:
            return []
        return [link_record(r) for r in rows]

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
        if not step_ids:
            return {}
        rows = self._fetch(
            "SELECT s.id, r.name FROM steps s JOIN runs r ON r.id = s.run_id "
            f"WHERE s.id IN ({marks(len(step_ids))})",
            list(step_ids),
        )
        return {r[0]: r[1] for r in rows}

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

    # -- lineage: a constant number of queries per artifact level, whatever the history ---

    def steps_linked(
        self, kind: str, artifact_ids: Sequence[int]
    ) -> list[tuple[int, str, StepRecord]]:
        """``(artifact id, input or output name, step)`` for every step, in any run, that took
        one of the artifacts as an input (``kind="input"``) or has it among its outputs
        (``"output"``: its producer, and steps that reused it from the cache); oldest first."""
        link = t.step_inputs if kind == "input" else t.step_outputs
        q = (
            sa.select(*cols.LISTED_STEP_COLUMNS, link.c.artifact_id, link.c.name)
            .join(link, link.c.step_id == t.steps.c.id)
            .where(link.c.artifact_id.in_(list(artifact_ids)))
            .order_by(t.steps.c.id, link.c.position)
        )
        with self._read() as conn:
            rows = conn.execute(q).all()
        return [(r[18], r[19], step_record(r, complete=False)) for r in rows]

    def runs_of_linked_steps(self, kind: str, artifact_ids: Sequence[int]) -> list[RunRecord]:
        """The runs of the steps ``steps_linked(kind, artifact_ids)`` returns, in one query."""
        link = t.step_inputs if kind == "input" else t.step_outputs
        run_ids = (
            sa.select(t.steps.c.run_id)
            .join(link, link.c.step_id == t.steps.c.id)
            .where(link.c.artifact_id.in_(list(artifact_ids)))
        )
        with self._read() as conn:
            rows = conn.execute(self._runs_query().where(t.runs.c.id.in_(run_ids))).all()
        return [run_record(r) for r in rows]

    def outputs_of_consumers(self, artifact_ids: Sequence[int]) -> list[ArtifactLink]:
        """Output links of every step that took one of the artifacts as an input."""
        consumers = sa.select(t.step_inputs.c.step_id).where(
            t.step_inputs.c.artifact_id.in_(list(artifact_ids))
        )
        so = t.step_outputs
        q = (
            sa.select(so.c.step_id, so.c.name, so.c.position, *cols.ARTIFACT_COLUMNS)
            .join(t.artifacts, t.artifacts.c.id == so.c.artifact_id)
            .where(so.c.step_id.in_(consumers))
            .order_by(so.c.step_id, so.c.position)
        )
        with self._read() as conn:
            rows = conn.execute(q).all()
        return [ArtifactLink(r[0], r[1], r[2], artifact_record(r, 3)) for r in rows]

    def steps_by_ids(self, step_ids: Sequence[int]) -> list[StepRecord]:
        if not step_ids:
            return []
        rows = self._fetch(
            f"SELECT {LISTED_STEP_SQL} FROM steps s WHERE s.id IN ({marks(len(step_ids))}) "
            "ORDER BY s.id",
            list(step_ids),
        )
        return [step_record(r, complete=False) for r in rows]

    def runs_by_ids(self, run_ids: Sequence[int]) -> list[RunRecord]:
        if not run_ids:
            return []
        rows = self._fetch(
            f"{RUN_SQL} WHERE r.id IN ({marks(len(run_ids))}) ORDER BY r.id", list(run_ids)
        )
        return [run_record(r) for r in rows]

    def upstream_runs(self, run_id: int) -> list[RunRecord]:
        """Other runs that produced an artifact a step of this run consumed or reused from the
        cache, oldest first; one query."""
        producer = t.steps.alias("producer")
        mine = t.steps.alias("mine")
        producer_runs = [
            sa.select(producer.c.run_id)
            .select_from(link)
            .join(mine, mine.c.id == link.c.step_id)
            .join(t.artifacts, t.artifacts.c.id == link.c.artifact_id)
            .join(producer, producer.c.id == t.artifacts.c.producer_step_id)
            .where(mine.c.run_id == run_id, producer.c.run_id != run_id)
            for link in (t.step_inputs, t.step_outputs)
        ]
        q = self._runs_query().where(t.runs.c.id.in_(sa.union(*producer_runs)))
        q = q.order_by(t.runs.c.start_time, t.runs.c.id)
        with self._read() as conn:
            return [run_record(r) for r in conn.execute(q).all()]
