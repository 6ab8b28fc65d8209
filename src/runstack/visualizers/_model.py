"""What the run pictures draw, as plain records: made from a ``RunView`` or by a live caller.

The dashboard draws runs that are still going; it builds a :class:`RunModel` from what it
knows (including steps it planned that have not started: status ``"not run"``). Recorded runs
are turned into one by :func:`run_model`, which reads the run's steps and their artifact links
in a few queries (the views batch them per run).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from runstack.post_execution import RunView

STATUSES = ("completed", "cached", "failed", "running", "not run")


@dataclass(frozen=True)
class StepNode:
    """One step of a run: its slot name, status (one of ``STATUSES``), times and outputs."""

    name: str
    status: str
    entrypoint: str | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None
    outputs: tuple[str, ...] = ()

    @property
    def duration(self) -> float | None:
        if self.start_time is None or self.end_time is None:
            return None
        return max(0.0, (self.end_time - self.start_time).total_seconds())


@dataclass(frozen=True)
class DataEdge:
    """Step ``source`` produced what step ``target`` consumed (``artifacts``: output names)."""

    source: str
    target: str
    artifacts: tuple[str, ...] = ()


@dataclass(frozen=True)
class RunModel:
    """A run as the graph and timeline draw it."""

    name: str
    pipeline: str
    status: str
    steps: tuple[StepNode, ...]
    edges: tuple[DataEdge, ...]
    start_time: datetime | None = None
    end_time: datetime | None = None


def run_model(run: RunView | RunModel) -> RunModel:
    """The :class:`RunModel` of a recorded run (a model is returned as it is)."""
    if isinstance(run, RunModel):
        return run
    steps = run.steps
    nodes = []
    produced: dict[int, tuple[str, str]] = {}  # artifact id -> (step, output name)
    for s in steps:
        outputs = s.outputs
        for name in outputs:
            produced.setdefault(outputs[name].id, (s.name, name))
        nodes.append(
            StepNode(
                name=s.name,
                status=s.status.value,
                entrypoint=s.entrypoint_name,
                start_time=s.start_time,
                end_time=s.end_time,
                outputs=tuple(outputs),
            )
        )
    names = {s.name for s in steps}
    edges = []
    for s in steps:
        inputs = s.inputs
        by_parent: dict[str, list[str]] = {}
        for name in inputs:
            source = produced.get(inputs[name].id)
            if source is not None and source[0] in names:
                by_parent.setdefault(source[0], []).append(source[1])
        # The recorded parents are the truth about dependencies; artifacts only label them
        # (a cached step's inputs may be an earlier run's artifacts with other ids).
        for parent in _parents(s, names):
            edges.append(DataEdge(parent, s.name, tuple(by_parent.get(parent, ()))))
    return RunModel(
        name=run.name,
        pipeline=run.pipeline_name,
        status=run.status.value,
        steps=tuple(nodes),
        edges=tuple(edges),
        start_time=run.start_time,
        end_time=run.end_time,
    )


def _parents(step: Any, names: set[str]) -> list[str]:
    from runstack.post_execution._display import parent_names

    return [p for p in parent_names(step) if p in names]
