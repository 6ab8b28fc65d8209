"""Small artifacts are kept in the metadata store: ``artifacts.inline_data``.

A built-in value whose JSON is under a few KB (see ``BaseMaterializer.INLINE_LIMIT``) is
stored with its record, so reading it needs no file; larger ones stay files. Artifacts recorded
before this revision have NULL here and are read from their files, unchanged.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Safe to re-run after a partial apply (MySQL DDL is not transactional).
    columns = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("artifacts")}
    if "inline_data" not in columns:
        op.add_column("artifacts", sa.Column("inline_data", sa.LargeBinary))


def downgrade() -> None:
    op.drop_column("artifacts", "inline_data")
