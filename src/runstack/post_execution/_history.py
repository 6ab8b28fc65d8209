"""Entry to the recorded history of one metadata store, for Repository and StepContext."""

from __future__ import annotations

from runstack.exceptions import PipelineNotFoundError, RunNotFoundError, did_you_mean
from runstack.metadata_stores import SQLMetadataStore
from runstack.post_execution._views import PipelineView, RunView


class History:
    """``get_pipelines()`` / ``get_pipeline(name)`` over one metadata store."""

    def __init__(self, store: SQLMetadataStore) -> None:
        self.store = store

    def get_pipelines(self) -> list[PipelineView]:
        """Pipelines with at least one run, by time of first run (oldest first)."""
        return [PipelineView(self.store, r) for r in self.store.list_pipelines()]

    def get_pipeline(
        self, pipeline_name: str | None = None, *, name: str | None = None
    ) -> PipelineView:
        pipeline_name = pipeline_name if pipeline_name is not None else name
        if pipeline_name is None:
            raise TypeError("get_pipeline() needs a pipeline name, e.g. get_pipeline('training').")
        record = self.store.get_pipeline(pipeline_name)
        if record is None:
            known = [p.name for p in self.store.list_pipelines()]
            raise PipelineNotFoundError(
                f"No pipeline named {pipeline_name!r} has run on this stack. "
                + did_you_mean(pipeline_name, known, "pipelines")
            )
        return PipelineView(self.store, record)

    def get_run(self, run_name: str) -> RunView:
        """A run by its name, whatever its pipeline."""
        record = self.store.get_run(run_name)
        if record is None:
            raise RunNotFoundError(f"No run named {run_name!r} in {self.store.display_url}.")
        return RunView(self.store, record, None)

    def __repr__(self) -> str:
        return f"History({self.store.display_url!r})"
