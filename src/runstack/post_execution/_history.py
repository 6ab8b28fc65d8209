"""Entry to the recorded history of one metadata store, for Repository and StepContext."""

from __future__ import annotations

from typing import TYPE_CHECKING

from runstack.exceptions import (
    PipelineNotFoundError,
    RunNotFoundError,
    did_you_mean,
    expect_name,
)
from runstack.metadata_stores import SQLMetadataStore
from runstack.post_execution._views import PipelineView, RunView

if TYPE_CHECKING:
    from runstack.artifact_stores import ArtifactStore


class History:
    """``get_pipelines()`` / ``get_pipeline(name)`` over one metadata store.

    Artifacts and logs are read through ``artifact_store`` (the stack's), which also refuses
    recorded URIs outside its root. Views carry ``stack_key``, the stack they were read from.
    """

    def __init__(
        self,
        store: SQLMetadataStore,
        artifact_store: ArtifactStore | None = None,
        stack_key: str | None = None,
    ) -> None:
        self.store = store
        self.artifact_store = artifact_store
        self.stack_key = stack_key

    def get_pipelines(self) -> list[PipelineView]:
        """Pipelines with at least one run, by time of first run (oldest first)."""
        return [
            PipelineView(self.store, r, self.artifact_store, self.stack_key)
            for r in self.store.list_pipelines()
        ]

    def get_pipeline(
        self, pipeline_name: str | None = None, *, name: str | None = None
    ) -> PipelineView:
        pipeline_name = pipeline_name if pipeline_name is not None else name
        if pipeline_name is None:
            raise TypeError("get_pipeline() needs a pipeline name, e.g. get_pipeline('training').")
        pipeline_name = expect_name(pipeline_name, "get_pipeline()'s pipeline name")
        record = self.store.get_pipeline(pipeline_name)
        if record is None:
            known = [p.name for p in self.store.list_pipelines()]
            raise PipelineNotFoundError(
                f"No pipeline named {pipeline_name!r} has run on this stack. "
                + did_you_mean(pipeline_name, known, "pipelines")
            )
        return PipelineView(self.store, record, self.artifact_store, self.stack_key)

    def get_run(self, run_name: str) -> RunView:
        """A run by its name, whatever its pipeline."""
        record = self.store.get_run(expect_name(run_name, "get_run()'s run name"))
        if record is None:
            raise RunNotFoundError(f"No run named {run_name!r} in {self.store.display_url}.")
        return RunView(self.store, record, None, self.artifact_store, self.stack_key)

    def __repr__(self) -> str:
        return f"History({self.store.display_url!r})"
