"""Server-rendered pages: everything they show is in the HTML, so they work with JavaScript off.

The small script (static/app.js) only improves them: step panels open in place, a running run
refreshes itself, and the compare button counts the ticked runs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from runstack.dashboard._data import Source, preview_dict
from runstack.exceptions import RunstackError
from runstack.models import format_duration
from runstack.post_execution import ArtifactView

router = APIRouter(include_in_schema=False)
PER_PAGE = 50
MAX_LOG_CHARS = 200_000  # the tail of longer logs; the API serves them whole
MAX_CHARTS = 4  # metric-over-runs charts on the compare page


def _env() -> Any:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
        autoescape=True,  # every value from the store is escaped
    )
    env.filters["dur"] = format_duration  # as the CLI and the pictures write them
    env.filters["when"] = lambda iso: "" if not iso else iso[:19].replace("T", " ")
    env.filters["show"] = _show
    env.filters["show_long"] = lambda v: v if isinstance(v, str) else json.dumps(v, indent=2)
    env.filters["at"] = _at
    env.filters["q"] = lambda d: urlencode(d, doseq=True)
    return env


_ENV: Any = None


def render(request: Request, template: str, http_status: int = 200, **context: Any) -> HTMLResponse:
    global _ENV
    if _ENV is None:
        _ENV = _env()
    source: Source = request.app.state.source
    html = _ENV.get_template(template).render(stack=source.stack, **context)
    return HTMLResponse(html, status_code=http_status)


def error_page(request: Request, status: int, message: str) -> Response:
    return render(request, "error.html", http_status=status, status_code=status, message=message)


def _at(nested: dict[str, dict[str, Any]], key: str) -> Any:
    """``nested["step"]["name"]`` for the column ``"step.name"``; "" where the run has none."""
    step, _, name = key.partition(".")
    return nested.get(step, {}).get(name, "")


def _show(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    text = json.dumps(value, default=str)
    return text if len(text) <= 120 else text[:117] + "..."


def _number(value: Any) -> float | None:
    """A value a metric chart can plot (bools are not numbers here), else None."""
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _source(request: Request) -> Source:
    src: Source = request.app.state.source
    return src


@router.get("/", response_class=HTMLResponse)
def pipelines_page(request: Request) -> HTMLResponse:
    return render(request, "pipelines.html", pipelines=_source(request).pipelines())


@router.get("/pipelines/{pipeline}", response_class=HTMLResponse)
def runs_page(
    request: Request,
    pipeline: str,
    status: Literal["running", "completed", "failed", ""] = "",
    name_prefix: Annotated[str, Query(max_length=190)] = "",
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
) -> HTMLResponse:
    data = _source(request).runs(
        pipeline,
        status=status or None,
        name_prefix=name_prefix or None,
        limit=PER_PAGE,
        offset=(page - 1) * PER_PAGE,
    )
    pages = max(1, -(-data["total"] // PER_PAGE))
    keep = {k: v for k, v in (("status", status), ("name_prefix", name_prefix)) if v}
    return render(
        request,
        "runs.html",
        data=data,
        status=status,
        name_prefix=name_prefix,
        page=page,
        pages=pages,
        keep=keep,
    )


@router.get("/runs/{run}", response_class=HTMLResponse)
def run_page(request: Request, run: str, step: str | None = None) -> HTMLResponse:
    from runstack.visualizers import run_graph_svg, timeline_svg

    src = _source(request)
    view = src.run_view(run)
    data = src.run_dict(view)
    panel = _panel(src, run, step) if step else None
    pictures = {"graph": run_graph_svg(view), "timeline": timeline_svg(view)}
    return render(request, "run.html", run=data, panel=panel, pictures=pictures)


@router.get("/runs/{run}/steps/{step}", response_class=HTMLResponse)
def step_page(request: Request, run: str, step: str) -> HTMLResponse:
    return run_page(request, run, step)


@router.get("/runs/{run}/steps/{step}/panel", response_class=HTMLResponse)
def step_panel(request: Request, run: str, step: str) -> HTMLResponse:
    """The step panel alone: what the run page's script puts in place."""
    return render(request, "panel.html", p=_panel(_source(request), run, step))


def _panel(src: Source, run: str, step: str) -> dict[str, Any]:
    # One loaded step for its record, logs and outputs: asking the source by name for each
    # of them would look the run and step up again every time.
    view = src.step_view(run, step)
    data = src.step_dict(view)
    try:
        logs = view.logs
        data["logs"] = logs[-MAX_LOG_CHARS:]
        data["logs_cut"] = len(logs) > MAX_LOG_CHARS
    except RunstackError as e:
        data["logs"], data["logs_cut"], data["logs_error"] = "", False, str(e)
    data["previews"] = {name: _preview(view.outputs[name]) for name in data["outputs"]}
    return data


def _preview(view: ArtifactView) -> dict[str, Any]:
    """The renderer's bounded preview, and its statistics picture for a table."""
    from runstack.visualizers import preview, statistics_svg

    found = preview(view)
    data = preview_dict(found)
    data["picture"] = None if found.statistics is None else statistics_svg(found.statistics)
    return data


@router.get("/compare", response_class=HTMLResponse)
def compare_page(
    request: Request, run: Annotated[list[str], Query(min_length=1, max_length=20)]
) -> Response:
    from runstack.visualizers import html_of, metric_svg

    src = _source(request)
    names = list(dict.fromkeys(run))
    if len(names) < 2:
        return error_page(request, 422, "Tick at least two different runs to compare.")
    data = src.compare(names)
    names = [r["name"] for r in data["runs"]]  # oldest first
    diffs = [
        {"a": names[0], "b": other, "html": html_of(src.diff_result(names[0], other))}
        for other in names[1:]
    ]
    charts: list[str] = []
    for row in data["metrics"] + data["parameters"]:
        points = [(n, _number(v)) for n, v in zip(names, row["values"], strict=True)]
        if row["differs"] and any(y is not None for _, y in points) and len(charts) < MAX_CHARTS:
            charts.append(metric_svg(points, title=row["key"]))
    return render(request, "compare.html", data=data, diffs=diffs, charts=charts)


@router.get("/artifacts/{artifact_id}", response_class=HTMLResponse)
def artifact_page(request: Request, artifact_id: int) -> HTMLResponse:
    src = _source(request)
    data = src.artifact(artifact_id)
    data["preview"] = _preview(src.artifact_view(artifact_id))
    return render(request, "artifact.html", a=data)
