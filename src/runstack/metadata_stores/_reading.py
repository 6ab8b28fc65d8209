"""What readers need of the metadata store: history queries, few round trips each.

Listings fetch whole groups in one query (no query per object) and filter in the database,
by one ``RunFilter`` value.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from runstack.metadata_stores import _schema as t
from runstack.metadata_stores._connection import SQLConnection
from runstack.metadata_stores._filter import RunFilter
from runstack.metadata_stores._params import encode_value
from runstack.metadata_stores._rows import (
    ARTIFACT_COLUMNS,
    LISTED_STEP_COLUMNS,
    RUN_COLUMNS,
    STEP_COLUMNS,
    artifact_links,
    artifact_record,
    aware,
    naive,
    run_record,
    step_record,
)
from runstack.models import (
    ArtifactLink,
    ExecutionStatus,
    PipelineRecord,
    RunRecord,
    StepRecord,
)


class HistoryReading(SQLConnection):
    """Queries over recorded pipelines, runs, steps and artifacts; never a write."""

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
        self, pipeline_id: int | None = None, where: RunFilter | None = None
    ) -> list[RunRecord]:
        """Runs (of one pipeline, or of all) that ``where`` selects, in its order and page."""
        f = where or RunFilter()
        q = self._filtered(self._runs_query(), pipeline_id, f)
        if f.newest_first:
            q = q.order_by(t.runs.c.start_time.desc(), t.runs.c.id.desc())
        else:
            q = q.order_by(t.runs.c.start_time, t.runs.c.id)
        if f.limit is not None:
            q = q.limit(f.limit)
        if f.offset:
            q = q.offset(f.offset)
        with self._read() as conn:
            return [run_record(r) for r in conn.execute(q).all()]

    def count_runs(self, pipeline_id: int | None = None, where: RunFilter | None = None) -> int:
        """How many runs ``list_runs`` would return for ``where`` without its page."""
        q = self._filtered(
            sa.select(sa.func.count()).select_from(t.runs), pipeline_id, where or RunFilter()
        )
        with self._read() as conn:
            return int(conn.execute(q).scalar_one())

    @staticmethod
    def _filtered(q: sa.Select[Any], pipeline_id: int | None, f: RunFilter) -> sa.Select[Any]:
        """``q`` restricted to the runs (of one pipeline, or of all) that ``f`` selects."""
        if pipeline_id is not None:
            q = q.where(t.runs.c.pipeline_id == pipeline_id)
        if f.status is not None:
            q = q.where(t.runs.c.status == ExecutionStatus(f.status).value)
        sp = t.step_parameters
        for key, value in (f.parameters or {}).items():
            step_name, _, name = key.partition(".")
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
        rt = t.run_tags
        for key, value in (f.tags or {}).items():
            q = q.where(
                t.runs.c.id.in_(sa.select(rt.c.run_id).where(rt.c.key == key, rt.c.value == value))
            )
        if f.name_prefix:
            escaped = f.name_prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            q = q.where(t.runs.c.name.like(escaped + "%", escape="\\"))
        if f.started_after is not None:
            q = q.where(t.runs.c.start_time >= naive(f.started_after))
        if f.started_before is not None:
            q = q.where(t.runs.c.start_time < naive(f.started_before))
        return q

    def tags_of_runs(self, run_ids: Sequence[int]) -> dict[int, dict[str, str]]:
        """Each run's tags (runs without any are left out), keys in sorted order."""
        rt = t.run_tags
        q = (
            sa.select(rt.c.run_id, rt.c.key, rt.c.value)
            .where(rt.c.run_id.in_(list(run_ids)))
            .order_by(rt.c.run_id, rt.c.key)
        )
        out: dict[int, dict[str, str]] = {}
        with self._read() as conn:
            for run_id, key, value in conn.execute(q):
                out.setdefault(run_id, {})[key] = value
        return out

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
                return artifact_links(conn, t.step_outputs, step_ids)
            return artifact_links(conn, t.step_outputs, None, pipeline_id, step_name)

    def inputs_of_steps(self, step_ids: Sequence[int]) -> list[ArtifactLink]:
        with self._read() as conn:
            return artifact_links(conn, t.step_inputs, step_ids)

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

    # -- lineage: a constant number of queries per artifact level, whatever the history ---

    def steps_linked(
        self, kind: str, artifact_ids: Sequence[int]
    ) -> list[tuple[int, str, StepRecord]]:
        """``(artifact id, input or output name, step)`` for every step, in any run, that took
        one of the artifacts as an input (``kind="input"``) or has it among its outputs
        (``"output"``: its producer, and steps that reused it from the cache); oldest first."""
        link = t.step_inputs if kind == "input" else t.step_outputs
        q = (
            sa.select(*LISTED_STEP_COLUMNS, link.c.artifact_id, link.c.name)
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
            sa.select(so.c.step_id, so.c.name, so.c.position, *ARTIFACT_COLUMNS)
            .join(t.artifacts, t.artifacts.c.id == so.c.artifact_id)
            .where(so.c.step_id.in_(consumers))
            .order_by(so.c.step_id, so.c.position)
        )
        with self._read() as conn:
            rows = conn.execute(q).all()
        return [ArtifactLink(r[0], r[1], r[2], artifact_record(r, 3)) for r in rows]

    def steps_by_ids(self, step_ids: Sequence[int]) -> list[StepRecord]:
        q = sa.select(*LISTED_STEP_COLUMNS).where(t.steps.c.id.in_(list(step_ids)))
        with self._read() as conn:
            return [step_record(r, complete=False) for r in conn.execute(q.order_by(t.steps.c.id))]

    def runs_by_ids(self, run_ids: Sequence[int]) -> list[RunRecord]:
        q = self._runs_query().where(t.runs.c.id.in_(list(run_ids))).order_by(t.runs.c.id)
        with self._read() as conn:
            return [run_record(r) for r in conn.execute(q).all()]

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
