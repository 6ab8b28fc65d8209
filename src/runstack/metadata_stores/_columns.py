"""The record columns as SQLAlchemy Core expressions, for the cold queries written with Core
(the hot ones are SQL text in ``_rows.py``; one decoder per record serves both). Imported on
first use: SQLAlchemy is (see ``_lazy.py``)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

import sqlalchemy as sa

from runstack.metadata_stores import _schema as t
from runstack.metadata_stores._rows import (
    ARTIFACT_NAMES,
    RUN_NAMES,
    STEP_NAMES,
    UNLISTED_STEP_NAMES,
)


def _as_text(column: sa.Column[Any]) -> sa.ColumnElement[Any]:
    """A column as the driver returns its text, with no SQLAlchemy parse (times: see
    ``aware``; JSON: decoded through a memo)."""
    return sa.type_coerce(column, sa.Text).label(column.name)


_TABLES = {"r": t.runs, "p": t.pipelines, "s": t.steps, "a": t.artifacts}


def _columns(
    names: Sequence[str], text: Collection[str] = (), null: Collection[str] = ()
) -> tuple[sa.ColumnElement[Any], ...]:
    """The Core columns of ``alias.column`` names (``_rows.py``): time columns as the driver
    returns their text (``_as_text``), those in ``text`` as text, those in ``null`` as NULL."""
    out: list[sa.ColumnElement[Any]] = []
    for name in names:
        alias, _, column = name.partition(".")
        c = _TABLES[alias].c[column]
        if name in null:
            out.append(sa.null().label(c.name))
        elif name in text or isinstance(c.type, sa.DateTime):
            out.append(_as_text(c))
        else:
            out.append(c)
    return tuple(out)


RUN_COLUMNS = _columns(RUN_NAMES)
STEP_COLUMNS = _columns(STEP_NAMES)
# Listings (many steps at once) take the small JSON columns as text, decoded through a memo:
# they repeat across runs, and json.loads per row dominated scans.
LISTED_STEP_COLUMNS = _columns(
    STEP_NAMES, text=("s.parameters", "s.parent_step_names"), null=UNLISTED_STEP_NAMES
)
# The file lists as text, decoded through the memo: they repeat across artifacts, and the
# driver's json.loads per row was a sixth of a history scan.
ARTIFACT_COLUMNS = _columns(ARTIFACT_NAMES, text=("a.files",))
