"""Browse recorded runs: ``PipelineView -> RunView -> StepView -> ArtifactView``; compare
them with ``run_a.diff(run_b)`` (a :class:`RunDiff`) and :func:`compare_runs`."""

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
from runstack.post_execution._history import History
from runstack.post_execution._json import run_to_dict, step_to_dict
from runstack.post_execution._views import (
    ArtifactView,
    PipelineView,
    RunView,
    StepArtifacts,
    StepView,
)

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
