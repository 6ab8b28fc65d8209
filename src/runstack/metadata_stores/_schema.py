"""The metadata store's tables (SQLAlchemy Core). Alembic migrations create and evolve them.

Changing a table here means adding a migration under ``migrations/versions`` and bumping
``SCHEMA_REVISION`` (in ``_migrate.py``: opening a store checks it without SQLAlchemy); a test
checks the two agree.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql

from runstack.metadata_stores._migrate import SCHEMA_REVISION as SCHEMA_REVISION

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# Names are bounded so that unique indexes fit MySQL's key length with utf8mb4; on MySQL they
# compare byte-wise (utf8mb4_bin) so that "Run" and "run" are two names there as elsewhere.
NAME = sa.String(190).with_variant(mysql.VARCHAR(190, collation="utf8mb4_bin"), "mysql", "mariadb")
TYPE_PATH = sa.String(512)
URI = sa.String(2048)
# Naive UTC everywhere; the store adds tzinfo when reading. MySQL's DATETIME drops microseconds
# unless asked (fsp=6), and runs are ordered by start time.
TIME = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
# Parameter values in their canonical encoding (see _params.py), compared byte-wise.
PARAM_VALUE = sa.String(255).with_variant(
    mysql.VARCHAR(255, collation="utf8mb4_bin"), "mysql", "mariadb"
)
TAG_KEY = sa.String(64).with_variant(mysql.VARCHAR(64, collation="utf8mb4_bin"), "mysql", "mariadb")
# Every table is InnoDB with utf8mb4 on MySQL, whatever the database's defaults are.
MYSQL: dict[str, Any] = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4"}

pipelines = sa.Table(
    "pipelines",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", NAME, nullable=False, unique=True),
    sa.Column("created_at", TIME, nullable=False),
    **MYSQL,
)

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("pipeline_id", sa.Integer, sa.ForeignKey("pipelines.id"), nullable=False),
    sa.Column("name", NAME, nullable=False, unique=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("start_time", TIME, nullable=False),
    sa.Column("end_time", TIME),
    sa.Column("error", sa.Text),
    sa.Column("owner_host", sa.String(255)),
    sa.Column("owner_pid", sa.Integer),
    sa.Column("heartbeat_at", TIME),
    # 0005: "<boot id>:<pid namespace inode>" of the owner, so its pid is only looked up where
    # it means the same process (see _liveness.py).
    sa.Column("owner_ns", sa.String(100)),
    # 0007: free text about the run, editable after it (`runstack run note`).
    sa.Column("note", sa.Text),
    sa.Index(None, "pipeline_id", "start_time"),
    sa.Index(None, "status"),
    # 0002: latest_successful_run and status filters within a pipeline, newest first.
    sa.Index(None, "pipeline_id", "status", "start_time"),
    # 0002: listings across pipelines by time.
    sa.Index(None, "start_time"),
    **MYSQL,
)

steps = sa.Table(
    "steps",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id"), nullable=False),
    sa.Column("name", NAME, nullable=False),
    sa.Column("entrypoint_name", NAME, nullable=False),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("role", sa.String(32)),  # trainer, evaluator... for standard step interfaces
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("parameters", sa.JSON, nullable=False),
    sa.Column("parent_step_names", sa.JSON, nullable=False),
    sa.Column("cache_key", sa.String(64)),
    sa.Column("cache_components", sa.JSON),
    sa.Column("cached_from_step_id", sa.Integer, sa.ForeignKey("steps.id")),
    sa.Column("start_time", TIME, nullable=False),
    sa.Column("end_time", TIME),
    sa.Column("error", sa.Text),
    sa.Column("traceback", sa.Text),
    sa.Column("logs_uri", URI),
    # {"options": {retries, timeout, resources...}, "attempts": [{attempt, start, end, error}]}
    sa.Column("execution", sa.JSON),
    sa.UniqueConstraint("run_id", "name"),
    # Cache lookups ask for the newest COMPLETED rows of a key; with an index on cache_key alone
    # SQLite reads every row of the key (cached re-uses included): O(runs) per lookup.
    # 0010: only rows with a key (not running rows, nor steps run with the cache off) where
    # the database has partial indexes: a page less written for those.
    sa.Index(
        None,
        "cache_key",
        "status",
        sqlite_where=sa.text("cache_key IS NOT NULL"),
        postgresql_where=sa.text("cache_key IS NOT NULL"),
    ),
    **MYSQL,
)

artifacts = sa.Table(
    "artifacts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("uri", URI, nullable=False),
    sa.Column("data_type", TYPE_PATH, nullable=False),
    sa.Column("materializer", TYPE_PATH, nullable=False),
    sa.Column("producer_step_id", sa.Integer, sa.ForeignKey("steps.id"), nullable=False),
    sa.Column("content_hash", sa.String(64)),
    sa.Column("created_at", TIME, nullable=False),
    # 0006: "pickle" when reading runs code from the files; read() requires it recorded so.
    sa.Column("storage_format", sa.String(32)),
    # 0008: the artifact's one file, for small values (see INLINE_FILE): reading needs no file.
    sa.Column("inline_data", sa.LargeBinary),
    # 0009: {file name: size} of every file the materializer wrote, checked before reuse/read.
    sa.Column("files", sa.JSON),
    sa.Index(None, "producer_step_id"),
    **MYSQL,
)


def _link_table(name: str) -> sa.Table:
    return sa.Table(
        name,
        metadata,
        sa.Column("step_id", sa.Integer, sa.ForeignKey("steps.id"), primary_key=True),
        sa.Column("name", NAME, primary_key=True),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("artifact_id", sa.Integer, sa.ForeignKey("artifacts.id"), nullable=False),
        sa.Index(None, "artifact_id"),
        # 0010: on SQLite the rows live in their primary key's B-tree, not in a rowid table
        # plus an index on that key: a page less written per recorded step.
        sqlite_with_rowid=False,
        **MYSQL,
    )


step_inputs = _link_table("step_inputs")
step_outputs = _link_table("step_outputs")

# 0002: one row per top-level step parameter, so that runs are filtered by parameter values in
# the database with an index (JSON path queries differ across SQLite, PostgreSQL and MySQL).
step_parameters = sa.Table(
    "step_parameters",
    metadata,
    sa.Column("step_id", sa.Integer, sa.ForeignKey("steps.id"), primary_key=True),
    sa.Column("name", NAME, primary_key=True),
    sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id"), nullable=False),
    sa.Column("step_name", NAME, nullable=False),
    sa.Column("value", PARAM_VALUE, nullable=False),
    sa.Index(None, "step_name", "name", "value", "run_id"),  # covers the filter subquery
    sa.Index(None, "run_id"),
    **MYSQL,
)

# 0007: ``key -> value`` labels of a run, set when it starts and editable afterwards; listings
# filter on them in the database (``get_runs(tags={"exp": "lr-sweep"})``).
run_tags = sa.Table(
    "run_tags",
    metadata,
    sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id"), primary_key=True),
    sa.Column("key", TAG_KEY, primary_key=True),
    sa.Column("value", PARAM_VALUE, nullable=False),
    sa.Index(None, "key", "value", "run_id"),  # covers the filter subquery
    **MYSQL,
)
