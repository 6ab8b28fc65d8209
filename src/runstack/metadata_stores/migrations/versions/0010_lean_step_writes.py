"""Fewer pages written per recorded step.

Recording a step writes a row in each of ``steps``, ``artifacts``, ``step_outputs`` and
``step_inputs`` and in their indexes; on SQLite every B-tree page touched is one more page
written to the -wal at COMMIT (~5 us each, ~15 pages a step before this revision).

- ``step_inputs`` and ``step_outputs`` become ``WITHOUT ROWID`` tables on SQLite: their rows
  live in the B-tree of their primary key (step_id, name) instead of in a rowid table plus an
  index on that key, one page less each per step. (PostgreSQL keeps its heap tables; InnoDB
  already clusters rows by primary key.)
- ``ix_steps_cache_key_status`` holds only rows with a cache key, on SQLite and PostgreSQL
  (MySQL and MariaDB have no partial indexes): a step recorded running, or run with its cache
  off, no longer writes to it. Cache lookups (``cache_key = ?``) still use it.

The tables are copied on SQLite, in the migration's one transaction: 1.4 s for a store of
100,000 runs (800,000 links), once.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from runstack.metadata_stores.migrations import _ops

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

LINKS = ("step_inputs", "step_outputs")
LARGE_LINK_TABLE = 100_000  # rows: rebuilding a larger one says so on stderr
CACHE_INDEX = "ix_steps_cache_key_status"


def _sqlite_sql(name: str) -> str:
    found = op.get_bind().execute(
        sa.text("SELECT sql FROM sqlite_master WHERE name = :name"), {"name": name}
    )
    return (found.scalar() or "").upper()


def _copy_link_table(name: str, rowid: bool) -> None:
    """Rebuild ``name`` (SQLite) with or without a rowid, rows, keys and index unchanged."""
    bind = op.get_bind()
    new = f"_new_{name}"
    bind.execute(sa.text(f'DROP TABLE IF EXISTS "{new}"'))
    # Columns as 0001 made them (see _schema._link_table).
    bind.execute(
        sa.text(
            f'CREATE TABLE "{new}" ('
            "step_id INTEGER NOT NULL, "
            "name VARCHAR(190) NOT NULL, "
            "position INTEGER NOT NULL, "
            "artifact_id INTEGER NOT NULL, "
            f"CONSTRAINT pk_{name} PRIMARY KEY (step_id, name), "
            f"CONSTRAINT fk_{name}_step_id_steps FOREIGN KEY(step_id) REFERENCES steps (id), "
            f"CONSTRAINT fk_{name}_artifact_id_artifacts FOREIGN KEY(artifact_id) "
            "REFERENCES artifacts (id))" + ("" if rowid else " WITHOUT ROWID")
        )
    )
    rows = bind.execute(sa.text(f'SELECT count(*) FROM "{name}"')).scalar() or 0
    if rows > LARGE_LINK_TABLE:
        _ops.progress(f"rebuilding {name} ({rows} rows)")
    # Only links whose step and artifact are in the store: the new table checks its foreign
    # keys, and one row pointing at nothing (left by an edit in the sqlite3 shell, where they
    # are off) would fail this upgrade at every open. No read returns such a row: links are
    # read joined to their artifact and step.
    copied = bind.execute(
        sa.text(
            f'INSERT INTO "{new}" (step_id, name, position, artifact_id) '
            f'SELECT step_id, name, position, artifact_id FROM "{name}" l '
            "WHERE EXISTS (SELECT 1 FROM steps s WHERE s.id = l.step_id) "
            "AND EXISTS (SELECT 1 FROM artifacts a WHERE a.id = l.artifact_id)"
        )
    ).rowcount
    if copied != rows:
        _ops.progress(
            f"left out {rows - copied} row(s) of {name} that pointed at a step or artifact no "
            "longer in the store (no read returned them)"
        )
    bind.execute(sa.text(f'DROP TABLE "{name}"'))
    bind.execute(sa.text(f'ALTER TABLE "{new}" RENAME TO "{name}"'))
    bind.execute(sa.text(f'CREATE INDEX "ix_{name}_artifact_id" ON "{name}" (artifact_id)'))


def _cache_index(partial: bool) -> None:
    dialect = op.get_bind().dialect.name
    if dialect not in ("sqlite", "postgresql"):
        return
    where = sa.text("cache_key IS NOT NULL") if partial else None
    if dialect == "sqlite":
        is_partial = " WHERE " in _sqlite_sql(CACHE_INDEX)
    else:
        found = op.get_bind().execute(
            sa.text(
                "SELECT indexdef FROM pg_indexes "
                "WHERE indexname = :name AND schemaname = current_schema()"
            ),
            {"name": CACHE_INDEX},
        )
        is_partial = " WHERE " in (found.scalar() or "").upper()
    if _ops.has_index("steps", CACHE_INDEX) and is_partial == partial:
        return
    _ops.drop_index(CACHE_INDEX, "steps")
    op.create_index(
        CACHE_INDEX,
        "steps",
        ["cache_key", "status"],
        sqlite_where=where,
        postgresql_where=where,
    )


def upgrade() -> None:
    # Safe to re-run after a partial apply (each part checks what is there first).
    if op.get_bind().dialect.name == "sqlite":
        for name in LINKS:
            if "WITHOUT ROWID" not in _sqlite_sql(name):
                _copy_link_table(name, rowid=False)
    _cache_index(partial=True)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for name in LINKS:
            if "WITHOUT ROWID" in _sqlite_sql(name):
                _copy_link_table(name, rowid=True)
    _cache_index(partial=False)
