"""Artifacts record every file their materializer wrote, with its size.

The cache checks this list before reusing an artifact (a truncated file, or a multi-file
artifact missing one file, is then passed over), and ``read()`` checks it before loading.
Artifacts recorded before this revision have NULL here: they are checked by their content
hash where they have one, and by the presence of their folder.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Safe to re-run after a partial apply (MySQL DDL is not transactional).
    columns = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("artifacts")}
    if "files" not in columns:
        op.add_column("artifacts", sa.Column("files", sa.JSON))


def downgrade() -> None:
    op.drop_column("artifacts", "files")
