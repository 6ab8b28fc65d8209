"""Several runs side by side: the parameters that differ between them and their metrics.

A column is ``"<step>.<name>"``: a step parameter (shown only when its value is not the same
in every run) or a scalar output (int, float, bool, short string; always shown), as read by
:func:`runstack.post_execution._json.metrics_of`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from runstack.post_execution._diff import RunSummary, _summary
from runstack.post_execution._json import artifacts_of, json_safe, metrics_of

if TYPE_CHECKING:
    from runstack.post_execution._views import RunView


@dataclass(frozen=True)
class ComparisonRow:
    """One run's values; a column missing from a dict had no value in that run."""

    run: RunSummary
    parameters: dict[str, Any]
    metrics: dict[str, Any]


@dataclass(frozen=True)
class RunComparison:
    """Runs in the order given, with the parameter columns that differ between them and
    every metric column (see the module docstring)."""

    parameters: tuple[str, ...]
    metrics: tuple[str, ...]
    rows: tuple[ComparisonRow, ...]

    def to_dict(self) -> dict[str, Any]:
        """``{"parameters": [...], "metrics": [...], "rows": [{"run": ..., "pipeline": ...,
        "status": ..., "start_time": ..., "parameters": {...}, "metrics": {...}}]}``."""
        return json_safe(
            {
                "parameters": list(self.parameters),
                "metrics": list(self.metrics),
                "rows": [
                    {**r.run.to_dict(), "parameters": r.parameters, "metrics": r.metrics}
                    for r in self.rows
                ],
            }
        )


def _columns(dicts: Sequence[dict[str, Any]]) -> list[str]:
    seen: dict[str, None] = {}
    for d in dicts:
        seen.update(dict.fromkeys(d))
    return list(seen)


def compare_runs(runs: Sequence[RunView]) -> RunComparison:
    """Compare ``runs`` (two or more, of one pipeline or of several with the same step
    names); see :class:`RunComparison`."""
    params: list[dict[str, Any]] = []
    metrics: list[dict[str, Any]] = []
    outputs = artifacts_of([s for run in runs for s in run.steps], "output")
    for run in runs:
        p: dict[str, Any] = {}
        m: dict[str, Any] = {}
        for step in run.steps:
            p.update({f"{step.name}.{k}": v for k, v in step.parameters.items()})
            found = metrics_of(step, outputs[step.id])
            m.update({f"{step.name}.{k}": v for k, v in found.items()})
        params.append(p)
        metrics.append(m)

    def varies(column: str) -> bool:
        values = {
            json.dumps(json_safe(p[column]), sort_keys=True) if column in p else None
            for p in params
        }
        return len(values) > 1

    differing = tuple(c for c in _columns(params) if varies(c))
    return RunComparison(
        parameters=differing,
        metrics=tuple(_columns(metrics)),
        rows=tuple(
            ComparisonRow(_summary(run), {c: p[c] for c in differing if c in p}, m)
            for run, p, m in zip(runs, params, metrics, strict=True)
        ),
    )
