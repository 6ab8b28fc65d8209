"""The record columns as SQLAlchemy Core expressions, for the cold queries written with Core
(the hot ones are SQL text in ``_rows.py``; one decoder per record serves both). Imported on
first use: SQLAlchemy is (see ``_lazy.py``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from runstack.metadata_stores import _schema as t
from runstack.metadata_stores._rows import artifact_record
from runstack.models import ArtifactLink


def _time(column: sa.Column[Any]) -> sa.ColumnElement[Any]:
    """A time column as the driver returns it, with no SQLAlchemy parse: see ``aware``."""
    return sa.type_coerce(column, sa.Text).label(column.name)


RUN_COLUMNS = (
    t.runs.c.id,
    t.runs.c.pipeline_id,
    t.pipelines.c.name,
    t.runs.c.name,
    t.runs.c.status,
    _time(t.runs.c.start_time),
    _time(t.runs.c.end_time),
    t.runs.c.error,
    t.runs.c.owner_host,
    t.runs.c.owner_pid,
    _time(t.runs.c.heartbeat_at),
    t.runs.c.owner_ns,
    t.runs.c.note,
)
STEP_COLUMNS = (
    t.steps.c.id,
    t.steps.c.run_id,
    t.steps.c.name,
    t.steps.c.entrypoint_name,
    t.steps.c.position,
    t.steps.c.status,
    t.steps.c.parameters,
    t.steps.c.cache_key,
    t.steps.c.cached_from_step_id,
    _time(t.steps.c.start_time),
    _time(t.steps.c.end_time),
    t.steps.c.error,
    t.steps.c.traceback,
    t.steps.c.parent_step_names,
    t.steps.c.role,
    t.steps.c.cache_components,
    t.steps.c.logs_uri,
    t.steps.c.execution,
)
# Listings (many steps at once) leave out what is big and rarely read, the traceback and the
# cache components (StepView loads them on use), and take the small JSON columns as text,
# decoded through a memo: they repeat across runs, and json.loads per row dominated scans.
LISTED_STEP_COLUMNS = tuple(
    sa.null().label(c.name)
    if c.name in ("traceback", "cache_components", "execution")
    else sa.type_coerce(c, sa.Text).label(c.name)
    if c.name in ("parameters", "parent_step_names")
    else c
    for c in STEP_COLUMNS
)


ARTIFACT_COLUMNS = (
    t.artifacts.c.id,
    t.artifacts.c.uri,
    t.artifacts.c.data_type,
    t.artifacts.c.materializer,
    t.artifacts.c.producer_step_id,
    t.artifacts.c.content_hash,
    t.artifacts.c.storage_format,
    t.artifacts.c.inline_data,
    # As text, decoded through the memo: the file lists repeat across artifacts, and the
    # driver's json.loads per row was a sixth of a history scan.
    sa.type_coerce(t.artifacts.c.files, sa.Text).label("files"),
)


def artifact_links(
    conn: sa.Connection,
    table: sa.Table,
    step_ids: Sequence[int] | None,
    pipeline_id: int | None = None,
    step_name: str | None = None,
) -> list[ArtifactLink]:
    """Input or output links (by ``table``) of the given steps, or of every step named
    ``step_name`` in a pipeline, in step then declared order."""
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
    return [ArtifactLink(r[0], r[1], r[2], artifact_record(r, 3)) for r in conn.execute(q).all()]
