"""Cache lookups by (cache_key, status): O(log n) instead of every row with the key.

Revision ID: 0003
Revises: 0002
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_steps_cache_key_status", "steps", ["cache_key", "status"])
    op.drop_index("ix_steps_cache_key", "steps")


def downgrade() -> None:
    op.create_index("ix_steps_cache_key", "steps", ["cache_key"])
    op.drop_index("ix_steps_cache_key_status", "steps")
