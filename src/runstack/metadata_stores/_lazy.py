"""Modules imported on first use, so reading or running pipelines on an existing SQLite store
needs no SQLAlchemy.

``import sqlalchemy`` costs 100-300 ms of a process, and its objects' finalisation more at
exit: most of a CLI call that lists runs, or of a short script that runs a pipeline. The hot
history reads are plain SQL on stdlib sqlite3 (``_connection._fetch``), and so are the
runner's writes (``_inserts.SQLiteInserts``), so the store's modules name SQLAlchemy (and the
tables, which are SQLAlchemy objects) through a :class:`LazyModule`, imported when a server's
store, a migration, a cold query or a rare write first touches it::

    if TYPE_CHECKING:
        import sqlalchemy as sa
    else:
        sa = LazyModule("sqlalchemy")
"""

from __future__ import annotations

import importlib
from typing import Any


class LazyModule:
    """Stands for module ``name``: the first use of an attribute imports the module; each
    attribute is then kept on this object, so later uses cost a plain attribute lookup."""

    def __init__(self, name: str) -> None:
        self._lazy_name = name

    def __getattr__(self, attr: str) -> Any:
        value = getattr(importlib.import_module(self._lazy_name), attr)
        setattr(self, attr, value)
        return value

    def __repr__(self) -> str:
        return f"LazyModule({self._lazy_name!r})"
