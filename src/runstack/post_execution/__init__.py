"""Browse recorded runs: ``PipelineView -> RunView -> StepView -> ArtifactView``."""

from runstack.metadata_stores import RunFilter
from runstack.post_execution._history import History
from runstack.post_execution._views import (
    ArtifactView,
    PipelineView,
    RunView,
    StepArtifacts,
    StepView,
)

__all__ = [
    "ArtifactView",
    "History",
    "PipelineView",
    "RunFilter",
    "RunView",
    "StepArtifacts",
    "StepView",
]
