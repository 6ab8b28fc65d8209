"""Previews of artifacts for display, read from a bounded part of their files.

Display never loads an artifact through the materializer that wrote it. What can be looked
into, and how far, is decided by ``post_execution._peek`` from the *recorded* materializer and
storage format (the one place that rule lives; run diffs use it too): JSON values, ``.npy``
arrays and Parquet tables, each read only up to a size limit (a bigger table still shows its
footer and first rows). Anything else, pickle-based torch modules and scikit-learn fallbacks
included, is described from its record and loaded by nobody until the user calls ``read()``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from runstack.post_execution import ArtifactView

ARRAY_LIMIT = 16 * 1024 * 1024  # bytes of an array loaded for its summary
STATS_LIMIT = 4 * 1024 * 1024  # bytes of a Parquet file scanned for statistics
VALUE_LIMIT = 64 * 1024  # bytes of a JSON value shown
HEAD_ROWS, HEAD_COLUMNS = 10, 20


@dataclass
class Preview:
    """What display shows of one artifact; ``kind`` says which fields are set."""

    kind: str  # "value", "bytes", "table", "array", "not loaded", "unavailable"
    note: str = ""
    value: Any = None
    columns: list[tuple[str, str]] = field(default_factory=list)  # (name, Arrow type)
    rows: list[list[Any]] = field(default_factory=list)
    num_rows: int | None = None
    statistics: Any = None  # TableStatistics, when the table is small enough to scan
    summary: dict[str, Any] = field(default_factory=dict)  # arrays: shape, dtype, min...


def preview(artifact: ArtifactView) -> Preview:
    """A bounded preview of ``artifact``; a missing or unreadable file gives an
    ``"unavailable"`` preview saying why, not an exception (``read()`` reports in full)."""
    from runstack.post_execution import _peek

    kind = _peek.kind_of(artifact)
    if kind == "opaque":
        pickled = artifact.storage_format == "pickle"
        how = " (pickle-based: reading it runs code from its files)" if pickled else ""
        writer = artifact.materializer.rsplit(".", 1)[-1]
        return Preview(
            "not loaded",
            f"Written by {writer}{how}; not loaded for display. Call .read() to load it.",
        )
    try:
        if kind == "bytes":
            return Preview("bytes", f"{_peek.size_of(artifact):,} bytes")
        if kind == "value":
            try:
                return Preview("value", value=_peek.read_value(artifact, VALUE_LIMIT))
            except _peek.TooLarge as e:
                return Preview("value", f"A JSON value too big to show here ({e}).")
        if kind == "array":
            return _array(artifact)
        return _table(artifact)
    except ImportError as e:
        return Preview(
            "unavailable",
            f"Previewing it needs {e.name}: pip install 'runstack[pandas]' (tables) or "
            "'runstack[numpy]' (arrays).",
        )
    except Exception as e:  # a display shows what it can
        return Preview("unavailable", f"Cannot preview it: {type(e).__name__}: {e}")


def _array(artifact: ArtifactView) -> Preview:
    from runstack.post_execution._peek import array_summary

    s = array_summary(artifact, ARRAY_LIMIT)
    summary: dict[str, Any] = {"shape": list(s.shape), "dtype": s.dtype, **(s.stats or {})}
    return Preview("array", s.note or "", summary=summary)


def _table(artifact: ArtifactView) -> Preview:
    from runstack.post_execution._peek import TooLarge, table_head, table_schema, table_statistics

    columns, rows = table_head(artifact, HEAD_ROWS, HEAD_COLUMNS)
    try:
        stats = table_statistics(artifact, STATS_LIMIT)
        note = ""
    except TooLarge as e:
        stats, note = None, f"Statistics are computed on read() ({e})."
    if len(columns) > HEAD_COLUMNS:
        note += f" Showing {HEAD_COLUMNS} of {len(columns)} columns."
    return Preview(
        "table",
        note.strip(),
        columns=columns,
        rows=[[_cell(v) for v in row] for row in rows],
        num_rows=table_schema(artifact).num_rows,
        statistics=stats,
    )


def _cell(v: Any) -> Any:
    if isinstance(v, float) and math.isnan(v):
        return "NaN"
    if isinstance(v, bytes | list | dict):
        text = json.dumps(v, default=str) if not isinstance(v, bytes) else repr(v)
        return text if len(text) <= 60 else text[:59] + "…"
    return v
