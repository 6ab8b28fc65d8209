"""Steps record how they were executed: their options (retries, timeout, resources) and
every attempt (start, end, error).

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Safe to re-run after a partial apply (MySQL DDL is not transactional).
    columns = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("steps")}
    if "execution" not in columns:
        op.add_column("steps", sa.Column("execution", sa.JSON))


def downgrade() -> None:
    op.drop_column("steps", "execution")
