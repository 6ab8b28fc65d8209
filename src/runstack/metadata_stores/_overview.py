"""Aggregate reads for overview pages (the dashboard): a few queries per page, whatever its size.

Kept apart from the runner's store so that listing pages never costs a query per run or step:
pipelines with their run counts and recent outcomes in two queries; the scalar outputs of a
page of runs in one.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa

from runstack.metadata_stores import _schema as t
from runstack.metadata_stores._columns import ARTIFACT_COLUMNS, RUN_COLUMNS, STEP_COLUMNS
from runstack.metadata_stores._rows import (
    artifact_record,
    aware,
    run_record,
    step_record,
)
from runstack.metadata_stores._sql_store import SQLMetadataStore
from runstack.models import ArtifactRecord, RunRecord, StepRecord


@dataclass(frozen=True)
class PipelineSummary:
    """A pipeline with its run count and latest runs (newest last)."""

    id: int
    name: str
    created_at: datetime
    run_count: int
    recent: list[RunRecord] = field(default_factory=list)


def pipeline_summaries(store: SQLMetadataStore, recent: int = 20) -> list[PipelineSummary]:
    """Every pipeline, oldest first, with its run count and its ``recent`` latest runs."""
    r = t.runs
    counts = sa.select(r.c.pipeline_id, sa.func.count()).group_by(r.c.pipeline_id)
    ranked = (
        sa.select(
            *RUN_COLUMNS,
            sa.func.row_number()
            .over(partition_by=r.c.pipeline_id, order_by=(r.c.start_time.desc(), r.c.id.desc()))
            .label("rn"),
        )
        .join(t.pipelines, t.pipelines.c.id == r.c.pipeline_id)
        .subquery()
    )
    latest = (
        sa.select(*(c for c in ranked.c if c.name != "rn"))
        .where(ranked.c.rn <= recent)
        .order_by(ranked.c.pipeline_id, ranked.c.rn.desc())
    )
    pipes = sa.select(t.pipelines.c.id, t.pipelines.c.name, t.pipelines.c.created_at).order_by(
        t.pipelines.c.created_at, t.pipelines.c.id
    )
    with store._read() as conn:
        n: dict[int, int] = {row[0]: row[1] for row in conn.execute(counts)}
        by_pipe: dict[int, list[RunRecord]] = {}
        for row in conn.execute(latest):
            record = run_record(row)
            by_pipe.setdefault(record.pipeline_id, []).append(record)
        return [
            PipelineSummary(p[0], p[1], aware(p[2]), n.get(p[0], 0), by_pipe.get(p[0], []))  # type: ignore[arg-type]
            for p in conn.execute(pipes)
        ]


def outputs_of_runs(
    store: SQLMetadataStore,
    run_ids: Sequence[int],
    data_types: Collection[str],
    materializer: str,
) -> list[tuple[int, str, str, ArtifactRecord]]:
    """``(run id, step, output, artifact)`` for every output of the given runs of one of
    ``data_types`` written by ``materializer`` (e.g. the scalar "metrics"), in one query."""
    s, o = t.steps, t.step_outputs
    q = (
        sa.select(s.c.run_id, s.c.name, o.c.name, *ARTIFACT_COLUMNS)
        .join(o, o.c.step_id == s.c.id)
        .join(t.artifacts, t.artifacts.c.id == o.c.artifact_id)
        .where(
            s.c.run_id.in_(list(run_ids)),
            t.artifacts.c.data_type.in_(list(data_types)),
            t.artifacts.c.materializer == materializer,
        )
        .order_by(s.c.run_id, s.c.position, o.c.position)
    )
    with store._read() as conn:
        return [(r[0], r[1], r[2], artifact_record(r, 3)) for r in conn.execute(q)]


def get_artifact(store: SQLMetadataStore, artifact_id: int) -> ArtifactRecord | None:
    """The recorded artifact with this id."""
    q = sa.select(*ARTIFACT_COLUMNS).where(t.artifacts.c.id == artifact_id)
    with store._read() as conn:
        row = conn.execute(q).first()
    return None if row is None else artifact_record(row, 0)


def steps_of_run(store: SQLMetadataStore, run_id: int) -> list[StepRecord]:
    """Every step of one run with all its columns (traceback, attempts...), in one query."""
    q = sa.select(*STEP_COLUMNS).where(t.steps.c.run_id == run_id).order_by(t.steps.c.position)
    with store._read() as conn:
        return [step_record(r) for r in conn.execute(q)]
