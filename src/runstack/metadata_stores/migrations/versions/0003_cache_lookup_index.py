"""Cache lookups by (cache_key, status): O(log n) instead of every row with the key.

Revision ID: 0003
Revises: 0002
"""

from alembic import op

from runstack.metadata_stores.migrations import _ops

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Safe to re-run after a partial apply (MySQL DDL is not transactional).
    _ops.create_index("ix_steps_cache_key_status", "steps", ["cache_key", "status"])
    _ops.drop_index("ix_steps_cache_key", "steps")


def downgrade() -> None:
    op.create_index("ix_steps_cache_key", "steps", ["cache_key"])
    op.drop_index("ix_steps_cache_key_status", "steps")
