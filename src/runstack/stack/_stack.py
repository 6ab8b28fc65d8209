"""A stack: one orchestrator, one metadata store and one artifact store, bound by name."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from runstack.execution import launch, make_plan
from runstack.post_execution import History, RunView

if TYPE_CHECKING:
    from runstack.artifact_stores import ArtifactStore
    from runstack.metadata_stores import SQLMetadataStore
    from runstack.pipelines import BasePipeline


@dataclass
class Stack:
    key: str
    orchestrator: Any
    metadata_store: SQLMetadataStore
    artifact_store: ArtifactStore

    @property
    def history(self) -> History:
        return History(self.metadata_store)

    def run_pipeline(self, pipeline: BasePipeline, run_name: str | None = None) -> RunView:
        plan = make_plan(pipeline)  # every definition error surfaces here, before the run
        run = launch(
            plan,
            orchestrator=self.orchestrator,
            metadata_store=self.metadata_store,
            artifact_store=self.artifact_store,
            history=self.history,
            run_name=run_name,
        )
        return self.history.get_run(run.name)
