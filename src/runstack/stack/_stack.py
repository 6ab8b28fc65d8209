"""A stack: one orchestrator, one metadata store and one artifact store, bound by name."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from runstack.exceptions import StepExecutionError

if TYPE_CHECKING:
    from runstack.artifact_stores import ArtifactStore
    from runstack.execution import Listener
    from runstack.metadata_stores import SQLMetadataStore
    from runstack.pipelines import BasePipeline
    from runstack.post_execution import History, RunView

# Execution and history (SQLAlchemy...) are imported on use: commands that only read or edit
# the config, such as `runstack stack list`, never load them.

# (stack, run name) of every run this process started, oldest first: `runstack pipeline run
# FILE` reports the runs FILE started while it was imported instead of running it again.
STARTED_RUNS: list[tuple[str, str]] = []


@dataclass
class Stack:
    """The built components of one registered stack; ``key`` is its name in the config."""

    key: str
    orchestrator: Any
    metadata_store: SQLMetadataStore
    artifact_store: ArtifactStore

    @property
    def history(self) -> History:
        from runstack.post_execution import History

        return History(self.metadata_store, self.artifact_store, self.key)

    def run_pipeline(
        self,
        pipeline: BasePipeline,
        run_name: str | None = None,
        *,
        listener: Listener | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> RunView:
        """Run ``pipeline`` on this stack and return the recorded run.

        ``tags`` label the run (``{"exp": "lr-sweep"}``); they are checked before it starts.
        Progress is shown per step (see ``runstack.execution._progress``) unless another
        ``listener`` is given, e.g. ``runstack.execution.log_listener``.
        """
        from runstack.execution import launch, make_plan
        from runstack.execution._progress import default_listener
        from runstack.metadata_stores._tags import check_tags

        tags = check_tags(tags)
        plan = make_plan(pipeline)  # every definition error surfaces here, before the run
        own = listener is None
        active = default_listener([sp.slot for sp in plan.steps]) if own else listener
        assert active is not None
        try:
            run = launch(
                plan,
                orchestrator=self.orchestrator,
                metadata_store=self.metadata_store,
                artifact_store=self.artifact_store,
                history=self.history,
                run_name=run_name,
                listener=active,
                tags=tags,
            )
            STARTED_RUNS.append((self.key, run.name))
        except StepExecutionError as e:
            STARTED_RUNS.append((self.key, e.run_name))
            raise
        finally:
            if own:
                active.close()  # type: ignore[attr-defined]
        from runstack.post_execution import RunView

        # The record in hand is what the store holds now (no query to read it back).
        return RunView(self.metadata_store, run, None, self.artifact_store, self.key)
