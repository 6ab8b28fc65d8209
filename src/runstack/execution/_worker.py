"""The worker's side of a run in another process (``parallel``) or on another node (``ray``).

The driver sends the stack's stores once per run, as their settings (see
:meth:`ArtifactStore.__reduce__` and :meth:`SQLMetadataStore.__reduce__`); a worker rebuilds
the artifact store at once and the history (a connection to the metadata store) only for a
step that reads it through a ``StepContext``, so workers of most pipelines never need to
reach the metadata store at all.
"""

from __future__ import annotations

import pickle
from dataclasses import replace
from typing import Any

from runstack.execution._task import StepTask, TaskResult, execute_task


def stores_payload(artifact_store: Any, history: Any) -> bytes:
    """The stack's stores, as the bytes a worker rebuilds them from."""
    import cloudpickle

    return pickle.dumps((cloudpickle.dumps(artifact_store), cloudpickle.dumps(history)))


class WorkerStores:
    """The stores a worker process rebuilt from :func:`stores_payload`; runs tasks with them."""

    def __init__(self, payload: bytes) -> None:
        import cloudpickle

        artifact_store, self._history_payload = pickle.loads(payload)
        self.artifact_store = cloudpickle.loads(artifact_store)
        self._history: Any = None

    def history(self) -> Any:
        if self._history is None:
            import cloudpickle

            self._history = cloudpickle.loads(self._history_payload)
        return self._history

    def execute(self, task: StepTask) -> TaskResult:
        reads_history = task.step.step.SIGNATURE.context_param is not None
        history = self.history() if reads_history else None
        return portable(execute_task(task, self.artifact_store, history))


def portable(result: TaskResult) -> TaskResult:
    """The result with its exception dropped if it cannot travel back to the driver."""
    if result.exception is None:
        return result
    try:
        pickle.dumps(result.exception)
    except Exception:
        return replace(result, exception=None)
    return result
