"""Notebook displays (``_repr_html_``) of the views and of a run diff.

Each reads what a listing reads plus bounded previews (see ``_preview``): no artifact is
loaded through its materializer, so display is quick and never unpickles anything.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from runstack.models import format_duration
from runstack.visualizers._diff import diff_body
from runstack.visualizers._graph import run_graph_svg
from runstack.visualizers._html import (
    Html,
    badge,
    fields,
    pre,
    short,
    table,
    view,
)
from runstack.visualizers._svg import esc, fmt_number
from runstack.visualizers._timeline import timeline_svg

if TYPE_CHECKING:
    from runstack.post_execution import ArtifactView, PipelineView, RunView, StepView

RUNS_SHOWN = 50


def _run_seconds(run: RunView) -> float | None:
    end = run.end_time
    return None if end is None else (end - run.start_time).total_seconds()


def pipeline_body(pipeline: PipelineView) -> Html:
    runs = pipeline.get_runs(limit=RUNS_SHOWN, newest_first=True)
    total = len(pipeline.get_run_names())
    rows = [
        [
            r.name,
            badge(r.status.value),
            r.start_time,
            format_duration(_run_seconds(r)),
            len(r.steps),
        ]
        for r in runs
    ]
    more = (
        f"<p class='muted'>The newest {RUNS_SHOWN} of {total} runs.</p>"
        if total > len(runs)
        else ""
    )
    return Html(
        f"<h2>Pipeline {esc(pipeline.name)}</h2>"
        f"<p class='muted'>{total} run{'s' if total != 1 else ''}, newest first</p>"
        + table(["run", "status", "started", "took", "steps"], rows)
        + more
    )


def steps_table(run: RunView) -> Html:
    rows = []
    for s in run.steps:
        params = s.parameters
        rows.append(
            [
                s.name,
                s.entrypoint_name,
                badge(s.status.value),
                format_duration(s.duration),
                ", ".join(s.outputs),
                short(params) if params else "",
            ]
        )
    return table(["step", "function", "status", "took", "outputs", "parameters"], rows)


def run_header(run: RunView) -> Html:
    error = f"<p class='before'>{esc(run.error)}</p>" if run.error else ""
    return Html(
        f"<h2>Run {esc(run.name)} {badge(run.status.value)}</h2>"
        f"<p class='muted'>pipeline {esc(run.pipeline_name)} · started "
        f"{esc(run.start_time.strftime('%Y-%m-%d %H:%M:%S %Z').strip())}"
        f"{' · took ' + esc(format_duration(_run_seconds(run))) if run.end_time else ''}</p>{error}"
    )


def run_body(run: RunView, *, strict: bool = True) -> Html:
    """Header, run graph and steps table; ``strict=False`` (notebooks) shows the install hint
    in place of the graph when the layout library is missing, instead of failing."""
    try:
        graph = f"<div class='picture'>{run_graph_svg(run)}</div>"
    except ImportError as e:
        if strict:
            raise
        graph = f"<p class='muted'>{esc(e)}</p>"
    return Html(run_header(run) + graph + "<h3>Steps</h3>" + steps_table(run))


def outputs_table(step: StepView) -> Html:
    rows = [
        [
            name,
            a.data_type.rsplit(".", 1)[-1],
            a.materializer.rsplit(".", 1)[-1],
            (a.content_hash or "")[:12],
            "reused" if a.is_cached else "written",
        ]
        for name, a in step.outputs.items()
    ]
    return table(["output", "type", "materializer", "content hash", ""], rows)


def step_body(step: StepView) -> Html:
    params = step.parameters
    try:
        decision = str(step.cache_explanation)
    except Exception as e:  # an explanation needs earlier records that may be gone
        decision = f"(cannot explain: {e})"
    error = pre(step.error) if step.error else ""
    took = step.duration
    return Html(
        f"<h2>Step {esc(step.name)} {badge(step.status.value)}</h2>"
        f"<p class='muted'>{esc(step.entrypoint_name)} in run {esc(step.run.name)}"
        f"{' · took ' + esc(format_duration(took)) if took is not None else ''}</p>"
        + error
        + "<h3>Parameters</h3>"
        + (
            fields((k, short(v, 200)) for k, v in params.items())
            if params
            else Html("<p class='muted'>none</p>")
        )
        + "<h3>Cache decision</h3>"
        + pre(decision)
        + "<h3>Outputs</h3>"
        + (outputs_table(step) if len(step.outputs) else Html("<p class='muted'>none</p>"))
    )


def preview_body(artifact: ArtifactView) -> Html:
    from runstack.visualizers._preview import preview
    from runstack.visualizers._stats import statistics_svg

    p = preview(artifact)
    parts = []
    if p.note:
        parts.append(f"<p class='muted'>{esc(p.note)}</p>")
    if p.kind == "value" and not p.note:
        parts.append(pre(short(p.value, 4000) if not isinstance(p.value, str) else p.value[:4000]))
    elif p.kind == "table":
        parts.append(f"<p>{p.num_rows:,} rows, {len(p.columns)} columns</p>")
        shown = p.columns[: len(p.rows[0])] if p.rows else p.columns
        parts.append(table([f"{n} ({t})" for n, t in shown], p.rows))
        if p.statistics is not None:
            parts.append(f"<div class='picture'>{statistics_svg(p.statistics)}</div>")
    elif p.kind == "array":
        parts.append(
            fields(
                (k, fmt_number(v) if isinstance(v, float) else short(v))
                for k, v in p.summary.items()
            )
        )
    return Html("".join(parts))


def artifact_body(artifact: ArtifactView) -> Html:
    return Html(
        f"<h2>Artifact {esc(artifact.name)}</h2>"
        + fields(
            [
                ("type", artifact.data_type),
                ("materializer", artifact.materializer),
                ("content hash", artifact.content_hash),
                ("uri", artifact.uri),
            ]
        )
        + preview_body(artifact)
    )


def _generic(value: Any) -> Html:
    """A ``to_dict()`` result with no display of its own: nested tables."""
    if isinstance(value, dict):
        return table(["", ""], [[k, _generic(v)] for k, v in value.items()])
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        return Html("".join(_generic(v) for v in value))
    return Html(esc(short(value, 300)))


def to_html(obj: Any) -> str:
    """The notebook HTML of a view (pipeline, run, step, artifact) or a run diff result."""
    from runstack.post_execution import ArtifactView, PipelineView, RunView, StepView

    if isinstance(obj, PipelineView):
        return view(pipeline_body(obj))
    if isinstance(obj, RunView):
        return view(run_body(obj, strict=False))
    if isinstance(obj, StepView):
        return view(step_body(obj))
    if isinstance(obj, ArtifactView):
        return view(artifact_body(obj))
    from runstack.post_execution._diff import RunDiff

    if isinstance(obj, RunDiff):
        return view(diff_body(obj))
    if hasattr(obj, "to_dict"):
        return view(_generic(obj.to_dict()))
    raise TypeError(f"No HTML display for {type(obj).__name__}.")


def timeline_body(run: RunView) -> Html:
    return Html(f"<div class='picture'>{timeline_svg(run)}</div>")
