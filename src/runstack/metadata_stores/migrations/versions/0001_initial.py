"""Initial schema: pipelines, runs, steps, artifacts and their input/output links.

Revision ID: 0001
Revises:
"""

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

from runstack.metadata_stores.migrations import _ops

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# Frozen copies of the column types in _schema.py at this revision (byte-wise names and
# microsecond DATETIME on MySQL; utf8mb4 InnoDB tables there whatever the database default).
NAME = sa.String(190).with_variant(mysql.VARCHAR(190, collation="utf8mb4_bin"), "mysql", "mariadb")
TIME = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
MYSQL: dict[str, Any] = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4"}


def upgrade() -> None:
    # Each table and index only if missing: safe to re-run after a partial apply (MySQL DDL is
    # not transactional).
    _ops.create_table(
        "pipelines",
        sa.Column("id", sa.Integer, autoincrement=True),
        sa.Column("name", NAME, nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_pipelines"),
        sa.UniqueConstraint("name", name="uq_pipelines_name"),
        **MYSQL,
    )
    _ops.create_table(
        "runs",
        sa.Column("id", sa.Integer, autoincrement=True),
        sa.Column("pipeline_id", sa.Integer, nullable=False),
        sa.Column("name", NAME, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("start_time", TIME, nullable=False),
        sa.Column("end_time", TIME),
        sa.Column("error", sa.Text),
        sa.Column("owner_host", sa.String(255)),
        sa.Column("owner_pid", sa.Integer),
        sa.Column("heartbeat_at", TIME),
        sa.PrimaryKeyConstraint("id", name="pk_runs"),
        sa.ForeignKeyConstraint(
            ["pipeline_id"], ["pipelines.id"], name="fk_runs_pipeline_id_pipelines"
        ),
        sa.UniqueConstraint("name", name="uq_runs_name"),
        **MYSQL,
    )
    _ops.create_index("ix_runs_pipeline_id_start_time", "runs", ["pipeline_id", "start_time"])
    _ops.create_index("ix_runs_status", "runs", ["status"])
    _ops.create_table(
        "steps",
        sa.Column("id", sa.Integer, autoincrement=True),
        sa.Column("run_id", sa.Integer, nullable=False),
        sa.Column("name", NAME, nullable=False),
        sa.Column("entrypoint_name", NAME, nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("role", sa.String(32)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("parameters", sa.JSON, nullable=False),
        sa.Column("parent_step_names", sa.JSON, nullable=False),
        sa.Column("cache_key", sa.String(64)),
        sa.Column("cache_components", sa.JSON),
        sa.Column("cached_from_step_id", sa.Integer),
        sa.Column("start_time", TIME, nullable=False),
        sa.Column("end_time", TIME),
        sa.Column("error", sa.Text),
        sa.Column("traceback", sa.Text),
        sa.Column("logs_uri", sa.String(2048)),
        sa.PrimaryKeyConstraint("id", name="pk_steps"),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name="fk_steps_run_id_runs"),
        sa.ForeignKeyConstraint(
            ["cached_from_step_id"], ["steps.id"], name="fk_steps_cached_from_step_id_steps"
        ),
        sa.UniqueConstraint("run_id", "name", name="uq_steps_run_id_name"),
        **MYSQL,
    )
    _ops.create_index("ix_steps_cache_key", "steps", ["cache_key"])
    _ops.create_table(
        "artifacts",
        sa.Column("id", sa.Integer, autoincrement=True),
        sa.Column("uri", sa.String(2048), nullable=False),
        sa.Column("data_type", sa.String(512), nullable=False),
        sa.Column("materializer", sa.String(512), nullable=False),
        sa.Column("producer_step_id", sa.Integer, nullable=False),
        sa.Column("content_hash", sa.String(64)),
        sa.Column("created_at", TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_artifacts"),
        sa.ForeignKeyConstraint(
            ["producer_step_id"], ["steps.id"], name="fk_artifacts_producer_step_id_steps"
        ),
        **MYSQL,
    )
    _ops.create_index("ix_artifacts_producer_step_id", "artifacts", ["producer_step_id"])
    for table in ("step_inputs", "step_outputs"):
        _ops.create_table(
            table,
            sa.Column("step_id", sa.Integer, nullable=False),
            sa.Column("name", NAME, nullable=False),
            sa.Column("position", sa.Integer, nullable=False),
            sa.Column("artifact_id", sa.Integer, nullable=False),
            sa.PrimaryKeyConstraint("step_id", "name", name=f"pk_{table}"),
            sa.ForeignKeyConstraint(["step_id"], ["steps.id"], name=f"fk_{table}_step_id_steps"),
            sa.ForeignKeyConstraint(
                ["artifact_id"], ["artifacts.id"], name=f"fk_{table}_artifact_id_artifacts"
            ),
            **MYSQL,
        )
        _ops.create_index(f"ix_{table}_artifact_id", table, ["artifact_id"])


def downgrade() -> None:
    for table in ("step_outputs", "step_inputs", "artifacts", "steps", "runs", "pipelines"):
        op.drop_table(table)
