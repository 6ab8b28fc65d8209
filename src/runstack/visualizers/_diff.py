"""A run diff as HTML: one row per thing that differs, before in red, after in green."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from runstack.visualizers._html import Html, badge, short, table
from runstack.visualizers._svg import esc

if TYPE_CHECKING:
    from runstack.post_execution._diff import OutputDiff, RunDiff, StepDiff


def _side(value: Any, cls: str) -> Html:
    if value is None:
        return Html("<span class='muted'>-</span>")
    return Html(f"<span class='{cls}'>{esc(short(value, 80))}</span>")


def _row(step: str, what: str, before: Any, after: Any) -> list[Any]:
    return [step, what, _side(before, "before"), _side(after, "after")]


def _output_rows(step: str, o: OutputDiff) -> list[list[Any]]:
    what = f"output {o.name}"
    if o.presence != "both":
        return [
            _row(
                step,
                what,
                "present" if o.presence == "only_a" else None,
                "present" if o.presence == "only_b" else None,
            )
        ]
    d = o.detail
    kind = getattr(d, "kind", None)
    rows: list[list[Any]] = []
    if kind == "value" and d.value is not None:  # type: ignore[union-attr]
        rows.append(_row(step, what, d.value.before, d.value.after))  # type: ignore[union-attr]
    elif kind == "array":
        for name in ("shape", "dtype"):
            delta = getattr(d, name)
            if delta.changed:
                rows.append(_row(step, f"{what} {name}", delta.before, delta.after))
        rows += [_row(step, f"{what} {k}", v.before, v.after) for k, v in d.stats.items()]  # type: ignore[union-attr]
    elif kind == "table":
        t: Any = d
        if t.rows.changed:
            rows.append(_row(step, f"{what} rows", t.rows.before, t.rows.after))
        rows += [_row(step, f"{what} column {c}", None, "added") for c in t.columns_added]
        rows += [_row(step, f"{what} column {c}", "removed", None) for c in t.columns_removed]
        rows += [
            _row(step, f"{what} column {c} type", v.before, v.after)
            for c, v in t.columns_retyped.items()
        ]
        for column, stats in t.column_stats.items():
            rows += [
                _row(step, f"{what} {column}.{k}", v.before, v.after) for k, v in stats.items()
            ]
    elif o.content_hash.changed:
        rows.append(_row(step, f"{what} content hash", o.content_hash.before, o.content_hash.after))
    if not rows:
        rows.append([step, what, Html(""), esc(d.summary if d is not None else "differs")])
    if d is not None and d.note:
        rows.append([step, what, Html(""), Html(f"<span class='muted'>{esc(d.note)}</span>")])
    return rows


def _step_rows(s: StepDiff) -> list[list[Any]]:
    if s.presence != "both":
        only_a = s.presence == "only_a"
        return [_row(s.name, "step", "present" if only_a else None, None if only_a else "present")]
    rows = []
    if s.status.changed:
        rows.append([s.name, "status", badge(str(s.status.before)), badge(str(s.status.after))])
    if s.entrypoint.changed:
        rows.append(_row(s.name, "function", s.entrypoint.before, s.entrypoint.after))
    for c in s.changes:
        what = f"{c.component} {c.name}".strip()
        rows.append(
            [
                s.name,
                Html(f"{esc(what)}<br><span class='muted'>{esc(c.description)}</span>"),
                _side(c.before, "before"),
                _side(c.after, "after"),
            ]
        )
    for o in s.outputs:
        if o.differs:
            rows += _output_rows(s.name, o)
    rows += [[s.name, "note", Html(""), n] for n in s.notes]
    return rows


def diff_body(diff: RunDiff) -> Html:
    """The differences of ``diff`` as a table; steps that do not differ are named below."""
    a, b = diff.a, diff.b
    head = (
        f"<h2>Run diff: {esc(a.name)} → {esc(b.name)}</h2>"
        f"<p class='muted'>{esc(a.name)} {badge(a.status)} ({esc(a.pipeline)}) before, "
        f"{esc(b.name)} {badge(b.status)} ({esc(b.pipeline)}) after"
        + ("" if diff.same_pipeline else "; different pipelines, steps matched by slot name")
        + "</p>"
    )
    if diff.identical:
        return Html(head + "<p>No differences.</p>")
    rows = [r for s in diff.differences for r in _step_rows(s)]
    same = [s.name for s in diff.steps if not s.differs]
    tail = f"<p class='muted'>Same in both: {esc(', '.join(same))}</p>" if same else ""
    return Html(
        head + table(["step", "what", f"{a.name} (before)", f"{b.name} (after)"], rows) + tail
    )
