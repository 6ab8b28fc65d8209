"""Artifacts record their storage format: "pickle" when reading them runs code from the files.

Decided from the files alone, a replaced ``meta.json`` could turn a safe ``state_dict``
artifact into a pickle that ``read()`` executes; the record, written once when the step
stored it, is what ``read()`` trusts. Artifacts recorded before this revision have NULL here,
so their pickle files are refused until the step that wrote them runs again.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Safe to re-run after a partial apply (MySQL DDL is not transactional).
    columns = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("artifacts")}
    if "storage_format" not in columns:
        op.add_column("artifacts", sa.Column("storage_format", sa.String(32)))


def downgrade() -> None:
    op.drop_column("artifacts", "storage_format")
