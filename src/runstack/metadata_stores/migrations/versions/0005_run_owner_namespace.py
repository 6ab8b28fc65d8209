"""Runs record which boot and PID namespace their process's pid belongs to.

A pid says nothing about a process in another container or after a reboot, even on a host of
the same name; ``owner_ns`` (``<boot id>:<pid namespace inode>``) tells crash detection when it
may look the pid up, and when only the heartbeat can tell.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Safe to re-run after a partial apply (MySQL DDL is not transactional).
    columns = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("runs")}
    if "owner_ns" not in columns:
        op.add_column("runs", sa.Column("owner_ns", sa.String(100)))


def downgrade() -> None:
    op.drop_column("runs", "owner_ns")
