"""Inside two versions of one artifact: what differs, read safely and within bounds.

Which reader applies is decided by the materializer recorded for the artifacts
(:func:`runstack.post_execution._peek.kind_of`): built-in values by value, NumPy arrays by
shape, dtype and summary statistics, tables by rows, columns and per-column statistics (those
of ``StatisticsMaterializer``). Pickle-based and unknown formats are never opened: they are
reported with both content hashes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, ClassVar

from runstack.exceptions import RunstackError
from runstack.post_execution._explain import ComponentChange
from runstack.post_execution._json import json_safe
from runstack.post_execution._peek import (
    READ_LIMIT,
    VALUE_LIMIT,
    TooLarge,
    array_summary,
    kind_of,
    read_value,
    table_schema,
    table_statistics,
)

if TYPE_CHECKING:
    from runstack.materializers._tabular import ColumnStatistics
    from runstack.post_execution._views import ArtifactView

_SHOW_CHARS = 1000  # a built-in value whose JSON is longer is described, not shown


def _plain(value: Any) -> Any:
    if isinstance(value, _ToDict | ComponentChange):
        return value.to_dict()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


class _ToDict:
    def to_dict(self) -> dict[str, Any]:
        """The result as plain JSON-ready data (``json.dumps`` it as is)."""
        data = {f.name: _plain(getattr(self, f.name)) for f in fields(self)}  # type: ignore[arg-type]
        return json_safe(data)


@dataclass(frozen=True)
class Delta(_ToDict):
    """A value in run A (``before``) and in run B (``after``); ``delta`` is ``after - before``
    for numbers, else None."""

    before: Any
    after: Any

    @property
    def changed(self) -> bool:
        return bool(self.before != self.after)

    @property
    def delta(self) -> float | int | None:
        a, b = self.before, self.after
        if isinstance(a, bool) or isinstance(b, bool):
            return None
        if isinstance(a, int | float) and isinstance(b, int | float):
            return b - a
        return None

    def to_dict(self) -> dict[str, Any]:
        return json_safe({"before": self.before, "after": self.after, "delta": self.delta})

    def __str__(self) -> str:
        return f"{_short(self.before)} -> {_short(self.after)}"


def _short(value: Any, limit: int = 60) -> str:
    text = value if isinstance(value, str) else json.dumps(json_safe(value), sort_keys=True)
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass(frozen=True)
class ArtifactDiff(_ToDict):
    """What differs inside two versions of an output; a subclass per kind of data.

    ``note`` says where the comparison stopped short (too large, pickle-based, unreadable).
    """

    kind: ClassVar[str] = "artifact"
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, **super().to_dict()}

    @property
    def summary(self) -> str:
        """One line for tables."""
        return self.note or "content differs"


@dataclass(frozen=True)
class ValueDiff(ArtifactDiff):
    """Two built-in values (numbers, strings, lists, dicts...). ``value`` holds both when
    their JSON is short enough to show; dicts also list the keys added, removed, changed."""

    kind: ClassVar[str] = "value"
    value: Delta | None = None
    length: Delta | None = None
    keys_added: tuple[str, ...] = ()
    keys_removed: tuple[str, ...] = ()
    keys_changed: tuple[str, ...] = ()

    @property
    def summary(self) -> str:
        parts = [str(self.value)] if self.value is not None else []
        if self.length is not None and self.length.changed:
            parts.append(f"length {self.length}")
        for what, keys in (
            ("added", self.keys_added),
            ("removed", self.keys_removed),
            ("changed", self.keys_changed),
        ):
            if keys:
                parts.append(f"keys {what}: {', '.join(keys[:5])}" + ("..." if keys[5:] else ""))
        if self.note:
            parts.append(self.note)
        return "; ".join(parts) or "value differs"


@dataclass(frozen=True)
class ArrayDiff(ArtifactDiff):
    """Two NumPy arrays: shape, dtype and the summary statistics that differ (``size``,
    ``nans``, ``min``, ``max``, ``mean``, ``std``)."""

    kind: ClassVar[str] = "array"
    shape: Delta = field(default_factory=lambda: Delta(None, None))
    dtype: Delta = field(default_factory=lambda: Delta(None, None))
    stats: dict[str, Delta] = field(default_factory=dict)

    @property
    def summary(self) -> str:
        parts = []
        if self.shape.changed:
            parts.append(f"shape {_shape(self.shape.before)} -> {_shape(self.shape.after)}")
        if self.dtype.changed:
            parts.append(f"dtype {self.dtype}")
        parts += [f"{k} {v}" for k, v in self.stats.items()]
        if self.note:
            parts.append(self.note)
        return "; ".join(parts) or "values differ (same shape, dtype and statistics)"


def _shape(shape: Any) -> str:
    return "(" + ", ".join(str(n) for n in shape) + ")" if shape is not None else "?"


@dataclass(frozen=True)
class TableDiff(ArtifactDiff):
    """Two tables (pandas, Arrow or polars): row count, columns added, removed and retyped,
    and per column the statistics that differ (those of ``StatisticsMaterializer``:
    ``count``, ``nulls``, ``mean``, ``std``, ``min``, ``max``, ``q0.25``/``q0.5``/``q0.75``,
    ``top_values``)."""

    kind: ClassVar[str] = "table"
    rows: Delta = field(default_factory=lambda: Delta(None, None))
    columns_added: tuple[str, ...] = ()
    columns_removed: tuple[str, ...] = ()
    columns_retyped: dict[str, Delta] = field(default_factory=dict)
    column_stats: dict[str, dict[str, Delta]] = field(default_factory=dict)

    @property
    def summary(self) -> str:
        parts = []
        if self.rows.changed:
            parts.append(f"rows {self.rows}")
        if self.columns_added:
            parts.append("columns added: " + ", ".join(self.columns_added))
        if self.columns_removed:
            parts.append("columns removed: " + ", ".join(self.columns_removed))
        parts += [f"column {c} retyped {d}" for c, d in self.columns_retyped.items()]
        if self.column_stats:
            parts.append("statistics differ in " + ", ".join(self.column_stats))
        if self.note:
            parts.append(self.note)
        return "; ".join(parts) or "values differ (same schema and statistics)"


@dataclass(frozen=True)
class OpaqueDiff(ArtifactDiff):
    """Artifacts not looked into (pickle-based, a format not read for diffs, or kinds that
    differ): only that the content differs, with both content hashes."""

    kind: ClassVar[str] = "opaque"
    hashes: Delta = field(default_factory=lambda: Delta(None, None))

    @property
    def summary(self) -> str:
        text = f"content differs (hash {self.hashes})"
        return f"{text}; {self.note}" if self.note else text


def artifact_diff(
    a: ArtifactView, b: ArtifactView, *, read_limit: int = READ_LIMIT
) -> ArtifactDiff:
    """How two artifacts differ inside, read within ``read_limit`` bytes each and never
    through pickle (see the module docstring)."""
    hashes = Delta(a.content_hash, b.content_hash)
    kind = kind_of(a)
    if kind != kind_of(b):
        return OpaqueDiff(note=f"different kinds of data ({kind} -> {kind_of(b)})", hashes=hashes)
    if kind == "opaque":
        pickled = "pickle" in (a.storage_format, b.storage_format)
        why = "pickle-based, not opened for a diff" if pickled else "a format not read for diffs"
        return OpaqueDiff(note=why, hashes=hashes)
    if kind == "bytes":
        return OpaqueDiff(note="raw bytes", hashes=hashes)
    if read_limit <= 0:
        return OpaqueDiff(note="not read (read_limit=0)", hashes=hashes)
    try:
        if kind == "value":
            return _value_diff(
                read_value(a, min(read_limit, VALUE_LIMIT)),
                read_value(b, min(read_limit, VALUE_LIMIT)),
            )
        if kind == "array":
            return _array_diff(a, b, read_limit)
        return _table_diff(a, b, read_limit)
    except TooLarge as e:
        return OpaqueDiff(note=f"too large to diff: {e}", hashes=hashes)
    except (RunstackError, OSError, ValueError) as e:
        return OpaqueDiff(note=f"could not be read: {e}", hashes=hashes)


def _value_diff(a: Any, b: Any) -> ValueDiff:
    shown = all(len(json.dumps(json_safe(v))) <= _SHOW_CHARS for v in (a, b))
    sized = (list, tuple, dict, set, frozenset, str, bytes)
    length = Delta(len(a), len(b)) if isinstance(a, sized) and isinstance(b, sized) else None
    keys: dict[str, tuple[str, ...]] = {}
    if isinstance(a, dict) and isinstance(b, dict):
        ka, kb = {str(k): k for k in a}, {str(k): k for k in b}
        keys = {
            "keys_added": tuple(sorted(set(kb) - set(ka))),
            "keys_removed": tuple(sorted(set(ka) - set(kb))),
            "keys_changed": tuple(sorted(k for k in set(ka) & set(kb) if a[ka[k]] != b[kb[k]])),
        }
    note = None if shown else f"values too long to show (over {_SHOW_CHARS} characters)"
    return ValueDiff(note=note, value=Delta(a, b) if shown else None, length=length, **keys)


def _array_diff(a: ArtifactView, b: ArtifactView, limit: int) -> ArrayDiff:
    sa, sb = array_summary(a, limit), array_summary(b, limit)
    stats = {}
    if sa.stats is not None and sb.stats is not None:
        for key in sa.stats.keys() | sb.stats.keys():
            d = Delta(sa.stats.get(key), sb.stats.get(key))
            if d.changed:
                stats[key] = d
    notes = [f"{side}: {s.note}" for side, s in (("a", sa), ("b", sb)) if s.note]
    return ArrayDiff(
        note="; ".join(notes) or None,
        shape=Delta(list(sa.shape), list(sb.shape)),
        dtype=Delta(sa.dtype, sb.dtype),
        stats=dict(sorted(stats.items())),
    )


def _table_diff(a: ArtifactView, b: ArtifactView, limit: int) -> TableDiff:
    sa, sb = table_schema(a), table_schema(b)
    types_a = {c.name: c.type for c in sa.columns}
    types_b = {c.name: c.type for c in sb.columns}
    note = None
    column_stats: dict[str, dict[str, Delta]] = {}
    try:
        stats_a, stats_b = table_statistics(a, limit), table_statistics(b, limit)
    except TooLarge as e:
        note = f"statistics not computed: {e}"
    else:
        for col in types_a.keys() & types_b.keys():
            changed = _column_changes(stats_a.columns[col], stats_b.columns[col])
            if changed:
                column_stats[col] = changed
    return TableDiff(
        note=note,
        rows=Delta(sa.num_rows, sb.num_rows),
        columns_added=tuple(c for c in types_b if c not in types_a),
        columns_removed=tuple(c for c in types_a if c not in types_b),
        columns_retyped={
            c: Delta(types_a[c], types_b[c])
            for c in types_a
            if c in types_b and types_a[c] != types_b[c]
        },
        column_stats={c: column_stats[c] for c in types_a if c in column_stats},
    )


def _column_changes(a: ColumnStatistics, b: ColumnStatistics) -> dict[str, Delta]:
    def flat(s: ColumnStatistics) -> dict[str, Any]:
        out: dict[str, Any] = {
            "count": s.count,
            "nulls": s.nulls,
            "mean": s.mean,
            "std": s.std,
            "min": s.min,
            "max": s.max,
        }
        out.update({f"q{q:g}": v for q, v in s.quantiles.items()})
        if s.top_values:
            out["top_values"] = dict(s.top_values)
        return out

    fa, fb = flat(a), flat(b)
    return {
        k: Delta(fa.get(k), fb.get(k))
        for k in list(fa) + [k for k in fb if k not in fa]
        if fa.get(k) != fb.get(k)
    }
