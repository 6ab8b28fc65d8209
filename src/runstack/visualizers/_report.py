"""A self-contained HTML report of runs: what a user attaches to a pull request or a ticket.

One file, no network: pictures are inline SVG, the style is inline, there is no script, and a
Content-Security-Policy forbids the page to fetch anything at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from runstack import __version__
from runstack.visualizers._diff import diff_body
from runstack.visualizers._html import STYLE, Html, badge, pre, short, table
from runstack.visualizers._notebook import (
    preview_body,
    run_body,
    timeline_body,
)
from runstack.visualizers._svg import esc

if TYPE_CHECKING:
    from runstack.post_execution import RunView, StepView

LOG_LINES = 20
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"


def _parameters(run: RunView) -> Html:
    rows = [[s.name, k, short(v, 200)] for s in run.steps for k, v in s.parameters.items()]
    if not rows:
        return Html("<p class='muted'>No step of this run takes parameters.</p>")
    return table(["step", "parameter", "value"], rows)


def _log_tail(step: StepView) -> tuple[int, str]:
    try:
        text = step.logs
    except Exception as e:  # a report shows what it can: logs may have been cleaned up
        return 0, f"(logs unavailable: {e})"
    lines = text.splitlines()
    return len(lines), "\n".join(lines[-LOG_LINES:])


def _logs(run: RunView) -> Html:
    parts, rows = [], []
    for s in run.steps:
        count, tail = _log_tail(s)
        rows.append([s.name, count, tail.splitlines()[-1][:120] if tail else ""])
        if tail:
            shown = (
                f"last {LOG_LINES} of {count} lines"
                if count > LOG_LINES
                else f"{count} line{'s' if count != 1 else ''}"
            )
            parts.append(
                f"<details><summary>{esc(s.name)}: {esc(shown)}</summary>{pre(tail)}</details>"
            )
    return Html(table(["step", "log lines", "last line"], rows) + "".join(parts))


def _failures(run: RunView) -> Html:
    parts = []
    for s in run.steps:
        if s.status.value == "failed":
            trace = s.traceback or s.error or ""
            parts.append(f"<h4>{esc(s.name)} {badge('failed')}</h4>{pre(trace[-4000:])}")
    return Html("<h3>Failures</h3>" + "".join(parts)) if parts else Html("")


def _outputs(run: RunView) -> Html:
    parts = []
    for s in run.steps:
        for name, artifact in s.outputs.items():
            kind = artifact.data_type.rsplit(".", 1)[-1]
            reused = " (reused)" if artifact.is_cached else ""
            parts.append(
                f"<details><summary>{esc(s.name)} → {esc(name)} <span class='muted'>"
                f"{esc(kind)}{reused}</span></summary>{preview_body(artifact)}</details>"
            )
    return Html("".join(parts) or "<p class='muted'>No outputs.</p>")


def _run_section(run: RunView) -> str:
    return (
        f"<section id='run-{esc(run.name)}'>"
        + run_body(run)
        + "<h3>Timeline</h3>"
        + timeline_body(run)
        + _failures(run)
        + "<h3>Parameters</h3>"
        + _parameters(run)
        + "<h3>Logs</h3>"
        + _logs(run)
        + "<h3>Outputs</h3>"
        + _outputs(run)
        + "</section><hr>"
    )


def report_html(runs: Sequence[RunView], diff: Any = None, title: str | None = None) -> str:
    """One self-contained HTML document about ``runs``: per run its graph, timeline, steps,
    parameters, logs summary and output previews; with ``diff`` (a run diff result), the
    diff first. Given exactly two runs and no ``diff``, they are diffed when the views can."""
    runs = list(runs)
    if not runs:
        raise ValueError("A report needs at least one run.")
    if diff is None and len(runs) == 2 and hasattr(runs[0], "diff"):
        diff = runs[0].diff(runs[1])
    title = title or "runstack report: " + ", ".join(r.name for r in runs)
    made = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    contents = ""
    if len(runs) > 1:
        contents = (
            "<ul>"
            + "".join(
                f"<li><a href='#run-{esc(r.name)}'>{esc(r.name)}</a> {badge(r.status.value)} "
                f"<span class='muted'>{esc(r.pipeline_name)}</span></li>"
                for r in runs
            )
            + "</ul>"
        )
    body = (
        f"<h1>{esc(title)}</h1><p class='muted'>Made {made} by runstack {esc(__version__)}</p>"
        + contents
        + (f"<section id='diff'>{diff_body(diff)}</section><hr>" if diff is not None else "")
        + "".join(_run_section(r) for r in runs)
    )
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<meta http-equiv='Content-Security-Policy' content=\"{CSP}\">"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{esc(title)}</title>"
        f"<style>body{{margin:24px;max-width:1200px}}{STYLE}</style></head>"
        f"<body class='runstack-view'>{body}</body></html>"
    )
