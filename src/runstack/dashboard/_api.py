"""The REST API under ``/api`` (JSON; schema at ``/api/openapi.json``; see docs/dashboard.md)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import PlainTextResponse

from runstack.dashboard._data import Source

router = APIRouter(prefix="/api")

Status = Literal["running", "completed", "failed"]
Name = Annotated[str, Query(min_length=1, max_length=190)]


def source(request: Request) -> Source:
    src: Source = request.app.state.source
    return src


@router.get("/pipelines", summary="Pipelines with their run count and latest runs")
def pipelines(request: Request) -> list[dict[str, Any]]:
    """Every pipeline that has run, oldest first: name, run count, latest run (name, status,
    start) and its up to 20 latest runs' status and duration (newest last)."""
    return source(request).pipelines()


@router.get("/pipelines/{pipeline}/runs", summary="Runs of a pipeline, filtered and paged")
def runs(
    request: Request,
    pipeline: str,
    status: Status | None = None,
    name_prefix: Annotated[str | None, Query(max_length=190)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
    newest_first: bool = True,
) -> dict[str, Any]:
    """Runs with status, start, duration, counts of completed/cached/failed steps, parameters
    (``"<step>.<parameter>"``) and scalar outputs (``"<step>.<output>"``); ``total`` is the
    number of runs matching the filters, for paging."""
    return source(request).runs(
        pipeline,
        status=status,
        name_prefix=name_prefix,
        limit=limit,
        offset=offset,
        newest_first=newest_first,
    )


@router.get("/runs/{run}", summary="A run with its steps")
def run(request: Request, run: str) -> dict[str, Any]:
    """The run and its steps (slot, entrypoint, status, cached, start, duration, parameters,
    attempts, error, parents, inputs and outputs with type and materializer)."""
    return source(request).run(run)


@router.get("/runs/{run}/steps/{step}", summary="One step with its cache decision")
def step(request: Request, run: str, step: str) -> dict[str, Any]:
    """As in the run, plus traceback, execution options and why it was (not) cached."""
    return source(request).step(run, step)


@router.get(
    "/runs/{run}/steps/{step}/logs",
    response_class=PlainTextResponse,
    summary="What a step printed and logged",
)
def logs(request: Request, run: str, step: str) -> str:
    return source(request).logs(run, step)


@router.get("/runs/{run}/steps/{step}/outputs/{output}/preview", summary="An output's preview")
def preview(request: Request, run: str, step: str, output: str) -> dict[str, Any]:
    """A bounded preview: ``kind`` is ``value``, ``array`` (shape, dtype, head, stats),
    ``table`` (columns, head rows, per-column statistics), ``withheld`` (pickle-based: never
    loaded), ``too_large``, ``missing`` or ``none``."""
    return source(request).preview(run, step, output)


@router.get("/artifacts/{artifact_id}", summary="A recorded artifact and its producer")
def artifact(request: Request, artifact_id: int) -> dict[str, Any]:
    return source(request).artifact(artifact_id)


@router.get("/diff", summary="What differs between two runs")
def diff(request: Request, a: Name, b: Name) -> dict[str, Any]:
    """The run diff of ``a`` -> ``b`` (see docs/compare.md)."""
    return source(request).diff(a, b)
