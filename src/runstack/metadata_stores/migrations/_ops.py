"""Schema operations that are safe to run again after a partial apply.

MySQL and MariaDB commit every DDL statement on its own: a migration interrupted half-way
(Ctrl-C, kill, a lost connection) leaves some of its tables and indexes behind while
``alembic_version`` still names the previous revision. Each migration therefore checks what
exists before creating or dropping it, so opening the store again finishes the upgrade.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

LARGE_STORE_STEPS = 20_000  # above this many steps a back-fill reports its progress


def _inspector() -> sa.Inspector:
    return sa.inspect(op.get_bind())  # fresh each time: reflection is cached per inspector


def has_table(name: str) -> bool:
    return _inspector().has_table(name)


def has_index(table: str, name: str) -> bool:
    return any(ix["name"] == name for ix in _inspector().get_indexes(table))


def create_table(name: str, *columns: Any, **kw: Any) -> None:
    if not has_table(name):
        op.create_table(name, *columns, **kw)


def create_index(name: str, table: str, columns: Sequence[str]) -> None:
    if not has_index(table, name):
        op.create_index(name, table, list(columns))


def drop_index(name: str, table: str) -> None:
    if has_index(table, name):
        op.drop_index(name, table)


def progress(message: str) -> None:
    """Say how a long upgrade is getting on (stderr, so piped output stays clean)."""
    print(f"runstack: {message}", file=sys.stderr, flush=True)
