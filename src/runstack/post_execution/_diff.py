"""What differs between two runs: steps, cache-key components and outputs, down to the data.

Steps are matched by their slot name, so runs of two pipelines with the same slot names
compare too (``RunDiff.same_pipeline`` says when they do). For each step the cache-key
components recorded at run time are compared with the same describer ``step explain`` uses
(:func:`runstack.post_execution._explain.component_changes`). Outputs are the same when their
content hashes are equal; when they differ, the artifacts are looked into as far as that is
safe and cheap (:mod:`runstack.post_execution._peek`): built-in values by value, arrays by
shape, dtype and statistics, tables by rows, columns and per-column statistics. Pickle-based
and unknown formats are never opened: they are reported with both hashes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, ClassVar

from runstack.exceptions import RunstackError
from runstack.post_execution._explain import ComponentChange, component_changes
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
    from runstack.post_execution._views import ArtifactView, RunView, StepView

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


@dataclass(frozen=True)
class OutputDiff(_ToDict):
    """One output slot of a step in both runs.

    ``presence``: ``both``, ``only_a`` or ``only_b``. ``same``: True when the content hashes
    are equal (or it is the same artifact), False when they differ, None when it cannot be
    told (an artifact too large to hash has none). ``detail`` looks into the data when it
    is not the same.
    """

    name: str
    presence: str
    same: bool | None
    content_hash: Delta
    data_type: Delta
    materializer: Delta
    detail: ArtifactDiff | None = None

    @property
    def differs(self) -> bool:
        return self.presence != "both" or self.same is not True

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "differs": self.differs}


@dataclass(frozen=True)
class StepDiff(_ToDict):
    """One step slot in both runs: presence (``both``, ``only_a``, ``only_b``), entrypoint,
    status and whether it was cached, each cache-key component that differs, and outputs.

    A step that ran in one run and was reused from the cache in the other, with nothing else
    different, does not count as differing (``differs``): its results are the same.
    """

    name: str
    presence: str
    entrypoint: Delta
    status: Delta
    cached: Delta
    cache_key_same: bool | None
    changes: tuple[ComponentChange, ...] = ()
    outputs: tuple[OutputDiff, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def differs(self) -> bool:
        outcome = Delta(*(_outcome(s) for s in (self.status.before, self.status.after)))
        return (
            self.presence != "both"
            or self.entrypoint.changed
            or outcome.changed
            or bool(self.changes)
            or any(o.differs for o in self.outputs)
        )

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "differs": self.differs}


def _outcome(status: str | None) -> str | None:
    return "completed" if status == "cached" else status


@dataclass(frozen=True)
class RunSummary(_ToDict):
    """Who is compared: a run's name, pipeline, status and start time (ISO 8601)."""

    name: str
    pipeline: str
    status: str
    start_time: str | None


@dataclass(frozen=True)
class RunDiff(_ToDict):
    """What differs between run ``a`` and run ``b`` (``a.diff(b)``: a is before, b after).

    ``steps`` holds every step slot of either run (those of ``a`` in execution order, then
    those only in ``b``); ``differences`` only those that differ. ``to_dict()`` gives all of
    it as JSON-ready data; ``str()`` the differences as text.
    """

    a: RunSummary
    b: RunSummary
    same_pipeline: bool
    steps: tuple[StepDiff, ...]

    @property
    def differences(self) -> tuple[StepDiff, ...]:
        return tuple(s for s in self.steps if s.differs)

    @property
    def identical(self) -> bool:
        """No step differs (statuses aside from cached-or-ran; see :class:`StepDiff`)."""
        return not self.differences

    def step(self, name: str) -> StepDiff:
        """The diff of one step slot, by name."""
        for s in self.steps:
            if s.name == name:
                return s
        raise KeyError(f"No step {name!r} in either run; steps: {[s.name for s in self.steps]}.")

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "identical": self.identical}

    def __str__(self) -> str:
        head = f"Run {self.a.name!r} -> {self.b.name!r}"
        if not self.same_pipeline:
            head += (
                f" (pipelines {self.a.pipeline!r} and {self.b.pipeline!r}; steps matched "
                "by slot name)"
            )
        if self.identical:
            return head + ": no differences."
        lines = [head + ":"]
        for s in self.differences:
            if s.presence != "both":
                run = self.a.name if s.presence == "only_a" else self.b.name
                lines.append(f"  step {s.name}: only in run {run!r}")
                continue
            status = f": {s.status}" if s.status.changed else ""
            lines.append(f"  step {s.name}{status}")
            lines += [f"    - {c.description}" for c in s.changes]
            for o in s.outputs:
                if o.differs:
                    lines.append(f"    output {o.name}: {_output_summary(o)}")
            lines += [f"    note: {n}" for n in s.notes]
        return "\n".join(lines)


def _output_summary(o: OutputDiff) -> str:
    if o.presence != "both":
        return "only in run " + ("A" if o.presence == "only_a" else "B")
    if o.detail is not None:
        return o.detail.summary
    return "same content" if o.same else "content differs"


# -- building it ------------------------------------------------------------------------------


def diff_runs(a: RunView, b: RunView, *, read_limit: int = READ_LIMIT) -> RunDiff:
    """Compare run ``a`` (before) with run ``b`` (after); see :class:`RunDiff`.

    ``read_limit`` bounds the bytes of any one artifact read to describe how it differs
    (0: compare hashes only, open nothing).
    """
    steps_a = {s.name: s for s in a.steps}
    steps_b = {s.name: s for s in b.steps}
    names = list(steps_a) + [n for n in steps_b if n not in steps_a]
    return RunDiff(
        a=_summary(a),
        b=_summary(b),
        same_pipeline=a.pipeline_name == b.pipeline_name,
        steps=tuple(
            _step_diff(n, steps_a.get(n), steps_b.get(n), (a.name, b.name), read_limit)
            for n in names
        ),
    )


def _summary(run: RunView) -> RunSummary:
    start = run.start_time.isoformat() if run.start_time is not None else None
    return RunSummary(run.name, run.pipeline_name, run.status.value, start)


def _presence(a: object | None, b: object | None) -> str:
    return "both" if a is not None and b is not None else ("only_a" if b is None else "only_b")


def _step_diff(
    name: str, a: StepView | None, b: StepView | None, runs: tuple[str, str], limit: int
) -> StepDiff:
    def both(get: Any) -> Delta:
        return Delta(get(a) if a is not None else None, get(b) if b is not None else None)

    base: dict[str, Any] = {
        "name": name,
        "presence": _presence(a, b),
        "entrypoint": both(lambda s: s.entrypoint_name),
        "status": both(lambda s: s.status.value),
        "cached": both(lambda s: s.is_cached),
    }
    if a is None or b is None:
        return StepDiff(**base, cache_key_same=None)
    notes = []
    comps_a, comps_b = a.cache_components, b.cache_components
    if comps_a and comps_b:
        changes = component_changes(b.entrypoint_name, comps_a, comps_b)
    else:
        for comps, run in ((comps_a, runs[0]), (comps_b, runs[1])):
            if not comps:
                notes.append(
                    f"no cache components were recorded in run {run!r} (the step failed "
                    "before its inputs were loaded, or ran before runstack recorded them): "
                    "only parameters are compared"
                )
        changes = component_changes(
            b.entrypoint_name, {"parameters": a.parameters}, {"parameters": b.parameters}
        )
    keys = (a.cache_key, b.cache_key)
    outs_a, outs_b = a.outputs, b.outputs
    out_names = list(outs_a) + [n for n in outs_b if n not in outs_a]
    return StepDiff(
        **base,
        cache_key_same=None if None in keys else keys[0] == keys[1],
        changes=tuple(changes),
        outputs=tuple(_output_diff(n, outs_a.get(n), outs_b.get(n), limit) for n in out_names),
        notes=tuple(notes),
    )


def _output_diff(
    name: str, a: ArtifactView | None, b: ArtifactView | None, limit: int
) -> OutputDiff:
    def both(get: Any) -> Delta:
        return Delta(get(a) if a is not None else None, get(b) if b is not None else None)

    base: dict[str, Any] = {
        "name": name,
        "presence": _presence(a, b),
        "content_hash": both(lambda v: v.content_hash),
        "data_type": both(lambda v: v.data_type),
        "materializer": both(lambda v: v.materializer),
    }
    if a is None or b is None:
        return OutputDiff(**base, same=None)
    if a.id == b.id:
        same: bool | None = True
    elif a.content_hash is not None and b.content_hash is not None:
        same = a.content_hash == b.content_hash
    else:
        same = None
    detail = None if same else artifact_diff(a, b, read_limit=limit)
    if same is None and detail is not None:
        unknown = "no content hash (too large to hash): whether the content is the same is unknown"
        detail = _with_note(detail, unknown)
    return OutputDiff(**base, same=same, detail=detail)


def _with_note(detail: ArtifactDiff, note: str) -> ArtifactDiff:
    import dataclasses

    joined = f"{detail.note}; {note}" if detail.note else note
    return dataclasses.replace(detail, note=joined)


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
