"""Reading a metric of each run of a pipeline: a step's parameter or scalar output."""

from __future__ import annotations

from typing import TYPE_CHECKING

from runstack.exceptions import OutputNotFoundError, StepNotFoundError

if TYPE_CHECKING:
    from runstack.post_execution import PipelineView, RunView


def _value_of(run: RunView, step_name: str, name: str) -> float | None:
    from runstack.post_execution._peek import NOT_SCALAR, scalar_of

    try:
        step = run.get_step(step_name)
    except StepNotFoundError:
        return None  # this run did not have (or did not reach) that step
    params = step.parameters
    if name in params:
        value = params[name]
    else:
        try:
            value = scalar_of(step.outputs[name])
        except OutputNotFoundError:
            return None
        if value is NOT_SCALAR:
            return None
    if isinstance(value, bool):
        return float(value)
    return float(value) if isinstance(value, int | float) else None


def metric_points(
    pipeline: PipelineView, metric: str, *, limit: int = 200
) -> list[tuple[str, float | None]]:
    """``(run name, value)`` of ``metric`` (``"step.parameter"`` or ``"step.output"``) for the
    newest ``limit`` runs of ``pipeline``, oldest first; None where a run lacks a numeric value.

    Outputs are read only when stored as small JSON scalars (never through a materializer).
    """
    step_name, dot, name = metric.partition(".")
    if not dot or not step_name or not name:
        raise ValueError(
            f"A metric is named '<step>.<parameter or output>', e.g. 'trainer.accuracy'; "
            f"got {metric!r}."
        )
    runs = pipeline.get_runs(limit=limit, newest_first=True)[::-1]
    return [(r.name, _value_of(r, step_name, name)) for r in runs]
