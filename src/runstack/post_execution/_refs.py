"""Naming runs on the command line and in ``Repository().diff``: names and ``latest~N``."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from runstack.exceptions import RunNotFoundError, did_you_mean

if TYPE_CHECKING:
    from runstack.post_execution._history import History
    from runstack.post_execution._views import PipelineView, RunView

_LATEST = re.compile(r"latest(?:~(\d+))?")
_KNOWN = 200  # newest run names searched for a "did you mean"


def latest_offset(name: str) -> int | None:
    """``latest`` -> 0, ``latest~3`` -> 3; None for any other name."""
    found = _LATEST.fullmatch(name)
    if found is None:
        return None
    return int(found.group(1) or 0)


def run_of_pipeline(pipeline: PipelineView, name: str) -> RunView:
    """A run of ``pipeline``: by name, or ``latest`` / ``latest~N`` (newest by start time)."""
    back = latest_offset(name)
    if back is None:
        return pipeline.get_run(name)
    runs = pipeline.get_runs(limit=back + 1, newest_first=True)
    if len(runs) <= back:
        raise RunNotFoundError(
            f"{name!r} is the run {back} before the newest of pipeline {pipeline.name!r}, "
            f"which has only {len(runs)} run(s). List them with `runstack run list "
            f"{pipeline.name}`."
        )
    return runs[back]


def latest_needs_pipeline(name: str) -> RunNotFoundError:
    return RunNotFoundError(
        f"{name!r} names a pipeline's newest runs: say which pipeline, e.g. "
        f"`--pipeline training` on the command line or pipeline='training' in Python."
    )


def run_not_found(
    name: str, histories: Sequence[History], stacks: Sequence[str]
) -> RunNotFoundError:
    """No run ``name`` on ``stacks``: the error lists the newest run names, closest first."""
    newest: list[RunView] = []
    for history in histories:  # an error path: a query per pipeline is fine
        for pipeline in history.get_pipelines():
            newest += pipeline.get_runs(limit=_KNOWN, newest_first=True)
    newest.sort(key=lambda r: r.start_time, reverse=True)
    known = [r.name for r in newest[:_KNOWN]]
    return RunNotFoundError(
        f"No run named {name!r} on stack(s) {list(stacks)}. "
        + did_you_mean(name, known, "runs (newest first)")
        + " List runs with `runstack run list`."
    )
