"""History filters in the database: step_parameters, and indexes for status and time listings.

``step_parameters`` holds one row per top-level step parameter, in the canonical encoding of
``runstack.metadata_stores._params``, so ``pipeline.get_runs(parameters={"trainer.lr": 0.1})``
is an indexed lookup on every backend. Existing steps are back-filled from ``steps.parameters``.

Revision ID: 0002
Revises: 0001
"""

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

from runstack.metadata_stores._params import parameter_rows
from runstack.metadata_stores.migrations import _ops

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

NAME = sa.String(190).with_variant(mysql.VARCHAR(190, collation="utf8mb4_bin"), "mysql", "mariadb")
VALUE = sa.String(255).with_variant(mysql.VARCHAR(255, collation="utf8mb4_bin"), "mysql", "mariadb")
MYSQL: dict[str, Any] = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4"}
_BATCH = 1000


def upgrade() -> None:
    # Every operation only if not done yet, and the back-fill resumes after the last step it
    # wrote: safe to re-run after a partial apply (MySQL DDL is not transactional).
    _ops.create_index(
        "ix_runs_pipeline_id_status_start_time", "runs", ["pipeline_id", "status", "start_time"]
    )
    _ops.create_index("ix_runs_start_time", "runs", ["start_time"])
    _ops.create_table(
        "step_parameters",
        sa.Column("step_id", sa.Integer, nullable=False),
        sa.Column("name", NAME, nullable=False),
        sa.Column("run_id", sa.Integer, nullable=False),
        sa.Column("step_name", NAME, nullable=False),
        sa.Column("value", VALUE, nullable=False),
        sa.PrimaryKeyConstraint("step_id", "name", name="pk_step_parameters"),
        sa.ForeignKeyConstraint(["step_id"], ["steps.id"], name="fk_step_parameters_step_id_steps"),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name="fk_step_parameters_run_id_runs"),
        **MYSQL,
    )
    _ops.create_index(
        "ix_step_parameters_step_name_name_value_run_id",
        "step_parameters",
        ["step_name", "name", "value", "run_id"],
    )
    _ops.create_index("ix_step_parameters_run_id", "step_parameters", ["run_id"])

    table = sa.table(
        "step_parameters",
        sa.column("step_id", sa.Integer),
        sa.column("name", sa.String),
        sa.column("run_id", sa.Integer),
        sa.column("step_name", sa.String),
        sa.column("value", sa.String),
    )
    steps = sa.table(
        "steps",
        sa.column("id", sa.Integer),
        sa.column("run_id", sa.Integer),
        sa.column("name", sa.String),
        sa.column("parameters", sa.JSON),
    )
    conn = op.get_bind()
    # Each batch is one INSERT statement (atomic), so every step up to the last one written
    # has all its rows.
    last = conn.execute(sa.select(sa.func.max(table.c.step_id))).scalar() or 0
    total = conn.execute(sa.select(sa.func.count()).where(steps.c.id > last)).scalar() or 0
    done = 0
    report_every = max(_BATCH, total // 10)
    if total > _ops.LARGE_STORE_STEPS:
        _ops.progress(f"back-filling step parameters of {total:,} steps (0002)...")
    while True:  # in batches by id, so a large store is back-filled in bounded memory
        rows = conn.execute(
            sa.select(steps.c.id, steps.c.run_id, steps.c.name, steps.c.parameters)
            .where(steps.c.id > last)
            .order_by(steps.c.id)
            .limit(_BATCH)
        ).all()
        if not rows:
            break
        values = [p for r in rows for p in parameter_rows(r[0], r[1], r[2], r[3] or {})]
        if values:
            conn.execute(table.insert(), values)
        last = rows[-1][0]
        before, done = done, done + len(rows)
        if total > _ops.LARGE_STORE_STEPS and done // report_every > before // report_every:
            _ops.progress(f"  {done:,} of {total:,} steps")
    if total > _ops.LARGE_STORE_STEPS and done % report_every:
        _ops.progress(f"  {done:,} of {total:,} steps")


def downgrade() -> None:
    op.drop_table("step_parameters")
    op.drop_index("ix_runs_start_time", "runs")
    op.drop_index("ix_runs_pipeline_id_status_start_time", "runs")
