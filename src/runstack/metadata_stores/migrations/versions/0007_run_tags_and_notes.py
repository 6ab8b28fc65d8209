"""Runs get tags (``key -> value``, indexed for filtering) and a note, both editable later.

Revision ID: 0007
Revises: 0006
"""

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

from runstack.metadata_stores.migrations import _ops

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

KEY = sa.String(64).with_variant(mysql.VARCHAR(64, collation="utf8mb4_bin"), "mysql", "mariadb")
VALUE = sa.String(255).with_variant(mysql.VARCHAR(255, collation="utf8mb4_bin"), "mysql", "mariadb")
MYSQL: dict[str, Any] = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4"}


def upgrade() -> None:
    # Every operation only if not done yet: safe to re-run after a partial apply (MySQL DDL is
    # not transactional).
    columns = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("runs")}
    if "note" not in columns:
        op.add_column("runs", sa.Column("note", sa.Text))
    _ops.create_table(
        "run_tags",
        sa.Column("run_id", sa.Integer, nullable=False),
        sa.Column("key", KEY, nullable=False),
        sa.Column("value", VALUE, nullable=False),
        sa.PrimaryKeyConstraint("run_id", "key", name="pk_run_tags"),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name="fk_run_tags_run_id_runs"),
        **MYSQL,
    )
    _ops.create_index("ix_run_tags_key_value_run_id", "run_tags", ["key", "value", "run_id"])


def downgrade() -> None:
    op.drop_table("run_tags")
    op.drop_column("runs", "note")
