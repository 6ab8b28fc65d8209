"""Browse recorded runs: ``PipelineView -> RunView -> StepView -> ArtifactView``; compare
them with ``run_a.diff(run_b)`` (a :class:`RunDiff`) and :func:`compare_runs`."""

from typing import TYPE_CHECKING, Any

from runstack.metadata_stores import RunFilter
from runstack.post_execution._history import History
from runstack.post_execution._json import run_to_dict, step_to_dict
from runstack.post_execution._views import (
    ArtifactView,
    PipelineView,
    RunView,
    StepArtifacts,
    StepView,
)

if TYPE_CHECKING:
    from runstack.post_execution._artifact_diff import (
        ArrayDiff,
        ArtifactDiff,
        Delta,
        OpaqueDiff,
        TableDiff,
        ValueDiff,
    )
    from runstack.post_execution._compare import ComparisonRow, RunComparison, compare_runs
    from runstack.post_execution._diff import OutputDiff, RunDiff, RunSummary, StepDiff
    from runstack.post_execution._explain import ComponentChange

# Comparing runs is loaded when first asked for: listing and reading history (the CLI's
# browsing commands) need none of it.
_LAZY = {
    **dict.fromkeys(
        ("ArrayDiff", "ArtifactDiff", "Delta", "OpaqueDiff", "TableDiff", "ValueDiff"),
        "_artifact_diff",
    ),
    **dict.fromkeys(("ComparisonRow", "RunComparison", "compare_runs"), "_compare"),
    **dict.fromkeys(("OutputDiff", "RunDiff", "RunSummary", "StepDiff"), "_diff"),
    "ComponentChange": "_explain",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


__all__ = [
    "ArrayDiff",
    "ArtifactDiff",
    "ArtifactView",
    "ComparisonRow",
    "ComponentChange",
    "Delta",
    "History",
    "OpaqueDiff",
    "OutputDiff",
    "PipelineView",
    "RunComparison",
    "RunDiff",
    "RunFilter",
    "RunSummary",
    "RunView",
    "StepArtifacts",
    "StepDiff",
    "StepView",
    "TableDiff",
    "ValueDiff",
    "compare_runs",
    "run_to_dict",
    "step_to_dict",
]


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
