"""The worker's side of a run in another process (``parallel``) or on another node (``ray``).

The driver sends the stack's stores once per run, as their settings (see
:meth:`ArtifactStore.__reduce__` and :meth:`SQLMetadataStore.__reduce__`); a worker rebuilds
the artifact store at once and the history (a connection to the metadata store) only for a
step that reads it through a ``StepContext``, so workers of most pipelines never need to
reach the metadata store at all.

The run's step definitions are pickled once per run (:func:`steps_payload`), each on its
own; a task then names its step by position (:func:`dump_task`). ``parallel`` hands a pool's
workers all of them at start, each unpickled the first time one of its tasks arrives
(:class:`RunSteps`); Ray sends each task with its own step's bytes (:func:`load_task`).
Pickling the plan with every task cost the driver about a millisecond per step. A step whose
code the worker cannot import still fails alone, when its task is loaded, as before.
"""

from __future__ import annotations

import io
import pickle
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from runstack.execution._plan import RunPlan, StepPlan
from runstack.execution._task import StepTask, TaskResult, execute_task


def stores_payload(artifact_store: Any, history: Any) -> bytes:
    """The stack's stores, as the bytes a worker rebuilds them from."""
    import cloudpickle

    return pickle.dumps((cloudpickle.dumps(artifact_store), cloudpickle.dumps(history)))


def steps_payload(plan: RunPlan) -> dict[int, bytes]:
    """The run's step definitions, one :func:`step_payload` each, by ``StepPlan.position``."""
    return {sp.position: step_payload(sp) for sp in plan.steps}


def step_payload(sp: StepPlan) -> bytes:
    """One step's definition, as the bytes a worker unpickles it from."""
    import cloudpickle

    return cloudpickle.dumps(sp)


class _TaskPickler(pickle.Pickler):
    # The task's StepPlan travels as its position: the worker has the definitions already.
    def persistent_id(self, obj: Any) -> Any:
        return obj.position if isinstance(obj, StepPlan) else None


class _TaskUnpickler(pickle.Unpickler):
    def __init__(self, data: bytes, step: Callable[[int], StepPlan]) -> None:
        super().__init__(io.BytesIO(data))
        self._step = step

    def persistent_load(self, pid: Any) -> Any:
        return self._step(pid)


def dump_task(task: StepTask) -> bytes:
    """``task`` without its step definition (a run record, input records and URIs: plain
    data, so the standard pickle does)."""
    out = io.BytesIO()
    _TaskPickler(out, pickle.HIGHEST_PROTOCOL).dump(task)
    return out.getvalue()


class RunSteps:
    """One run's step definitions on a worker, each unpickled when first needed."""

    def __init__(self, payload: dict[int, bytes]) -> None:
        self._payload = payload
        self._loaded: dict[int, StepPlan] = {}

    def step(self, position: int) -> StepPlan:
        sp = self._loaded.get(position)
        if sp is None:  # raises if the step's code is not importable here; not remembered
            import cloudpickle

            sp = self._loaded[position] = cloudpickle.loads(self._payload[position])
        return sp

    def load_task(self, data: bytes) -> StepTask:
        task: StepTask = _TaskUnpickler(data, self.step).load()
        return task


def load_task(data: bytes, step: bytes) -> StepTask:
    """A task from :func:`dump_task`, given its step's bytes from :func:`steps_payload`
    (unpickled afresh: nothing of one run's step definitions outlives its task)."""
    import cloudpickle

    sp = cloudpickle.loads(step)
    task: StepTask = _TaskUnpickler(data, lambda _position: sp).load()
    return task


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
