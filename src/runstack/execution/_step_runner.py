"""The driver's side of running a step: cache lookup, records, retries; workers do the rest.

For each step an orchestrator calls :meth:`StepRunner.prepare` (cache hit -> recorded and
done; else a :class:`~runstack.execution._task.StepTask`), records it ``running``
(:meth:`StepRunner.started`) as it hands the task to a worker, has the task executed
somewhere (:func:`~runstack.execution._task.execute_task`), and hands the result to
:meth:`StepRunner.finish`, which records the step (or returns the next attempt). The driver is
the one writer of run and step records; workers only write artifacts.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any

from runstack.artifact_stores import ArtifactStore, _verify
from runstack.exceptions import (
    ArtifactNotFoundError,
    RunstackError,
    StepExecutionError,
    StepTimeoutError,
)
from runstack.execution import _cache
from runstack.execution._events import Listener, RunEvent, log_listener
from runstack.execution._plan import RunPlan, StepPlan
from runstack.execution._task import StepTask, TaskResult, failed_result, timeout_error
from runstack.metadata_stores import SQLMetadataStore
from runstack.metadata_stores._recording import CacheSourceGoneError
from runstack.models import ArtifactRecord, ExecutionStatus, RunRecord, StepResult

logger = logging.getLogger("runstack")

# The id of an artifact written but not recorded yet (see StepRunner.provisional_outputs);
# never one the store gives out (they start at 1).
PENDING_ID = 0


def _now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class StepOutcome:
    outputs: dict[str, ArtifactRecord]
    status: ExecutionStatus


@dataclass
class _InFlight:
    """What the driver keeps about a step between ``prepare`` and ``finish``."""

    inputs: dict[str, ArtifactRecord]
    cache_key: str | None
    components: dict[str, Any]
    start: datetime
    running_step_id: int | None = None  # set by started()
    attempts: list[dict[str, Any]] = field(default_factory=list)
    # Prepared with outputs of a step not recorded yet (see StepRunner.provisional_outputs):
    # nothing of it is recorded until that step's record is (StepRunner.finish(started=...)).
    pending: bool = False


class StepRunner:
    """Records the steps of one run in one metadata store; hands out their tasks."""

    def __init__(
        self,
        plan: RunPlan,
        run: RunRecord,
        metadata_store: SQLMetadataStore,
        artifact_store: ArtifactStore,
        history: Any,
        listener: Listener = log_listener,
    ) -> None:
        self.listener = listener
        self.plan = plan
        self.run = run
        self.metadata_store = metadata_store
        self.artifact_store = artifact_store
        self.history = history
        self._in_flight: dict[str, _InFlight] = {}
        # Steps not yet recorded completed or cached; the record of the last one also records
        # the run completed, at ``completed_at``.
        self._left = len(plan.steps)
        self.completed_at: datetime | None = None

    def _emit(
        self, kind: Any, sp: StepPlan, start: datetime | None = None, detail: str | None = None
    ) -> None:
        duration = (_now() - start).total_seconds() if start is not None else None
        self.listener(
            RunEvent(
                kind,
                self.plan.pipeline_name,
                self.run.name,
                sp.slot,
                sp.step.NAME,
                duration,
                detail,
            )
        )

    # -- the protocol orchestrators follow -----------------------------------------------

    def prepare(self, sp: StepPlan, inputs: dict[str, ArtifactRecord]) -> StepOutcome | StepTask:
        """A cached step's outcome (recorded), or the first attempt's task to execute (to be
        recorded running with :meth:`started`)."""
        prepared = self._prepare(sp, inputs, pending=False)
        assert prepared is not None
        return prepared

    def prepare_pending(self, sp: StepPlan, inputs: dict[str, ArtifactRecord]) -> StepTask | None:
        """:meth:`prepare` where some of ``inputs`` are :meth:`provisional_outputs` of a step
        whose record is still to be written. The task is recorded running (and announced) by
        that step's :meth:`finish`; a cache hit returns None instead, to be prepared again
        once the inputs are recorded (the hit's record links them)."""
        prepared = self._prepare(sp, inputs, pending=True)
        assert not isinstance(prepared, StepOutcome)
        return prepared

    def _prepare(
        self, sp: StepPlan, inputs: dict[str, ArtifactRecord], *, pending: bool
    ) -> StepOutcome | StepTask | None:
        start = _now()
        if not pending:
            self._emit("step_started", sp)
        cache_key = None
        parts = _cache.components(self.plan.pipeline_name, sp, inputs)
        if sp.cache_enabled:
            cache_key = _cache.digest(parts)
            hit, decision = self._find_cached(cache_key)
            if hit is not None and pending:
                return None
            if hit is not None:
                source_id, outputs = hit
                try:
                    end = _now()
                    self.metadata_store.record_step(
                        self._result(
                            sp,
                            ExecutionStatus.CACHED,
                            start,
                            end,
                            inputs,
                            cache_key,
                            _cache.with_decision(parts, decision),
                            reused_outputs=outputs,
                            cached_from_step_id=source_id,
                        ),
                        run_completed_at=self._run_end(end),
                    )
                    self._recorded(end)
                except CacheSourceGoneError:
                    # Deleted (runstack gc) since the lookup: the step runs instead.
                    gone = {"step_id": source_id, "missing": sorted(outputs)}
                    decision = {"outcome": "miss", "artifacts_missing": [gone]}
                else:
                    self._emit("step_cached", sp, start, f"from run {decision['run']!r}")
                    return StepOutcome(outputs, ExecutionStatus.CACHED)
        else:
            decision = _cache.disabled_decision(sp)
        components = _cache.with_decision(parts, decision)
        self._in_flight[sp.slot] = _InFlight(inputs, cache_key, components, start, pending=pending)
        return self._task(sp, inputs, attempt=1)

    def started(self, task: StepTask) -> None:
        """Record the step ``running`` (once, at its first attempt), so a live or crashed run
        shows which steps were in flight; :meth:`finish` replaces that row."""
        state = self._in_flight.get(task.step.slot)
        if state is not None and state.running_step_id is None and not state.pending:
            state.running_step_id = self.metadata_store.start_step(self._running(task, state))

    def provisional_outputs(
        self, task: StepTask, result: TaskResult
    ) -> dict[str, ArtifactRecord] | None:
        """The records the outputs of a successful ``result`` will have, but for their ids
        (``PENDING_ID``), so its successors can be handed to workers while :meth:`finish`
        records it (inputs travel by URI, content hash and materializer; their ids matter only
        to the successor's own record, written after this one). None if the result failed or
        an output has no content hash (a successor's cache key would need its id)."""
        if not result.ok or any(a.content_hash is None for a in result.outputs):
            return None
        return {
            a.name: ArtifactRecord(
                PENDING_ID,
                a.uri,
                a.data_type,
                a.materializer,
                PENDING_ID,
                a.content_hash,
                a.storage_format,
                a.inline,
                a.files,
            )
            for a in result.outputs
        }

    def recorded(self, task: StepTask) -> StepTask:
        """``task``, prepared with pending inputs, with their records as :meth:`finish` of
        their producer wrote them (ids included)."""
        return replace(task, inputs=self._in_flight[task.step.slot].inputs)

    def discard(self, task: StepTask) -> None:
        """Forget a task prepared with ``pending`` inputs whose producer's record failed: it
        is recorded nowhere (its inputs never were); what it writes stays unreferenced."""
        state = self._in_flight.get(task.step.slot)
        if state is not None and state.pending:
            del self._in_flight[task.step.slot]

    def finish(
        self, task: StepTask, result: TaskResult, started: Sequence[StepTask] = ()
    ) -> StepOutcome | StepTask:
        """Record a finished attempt: the step's outcome, or the next attempt's task.

        ``started``: successors already handed to workers with this step's
        :meth:`provisional_outputs` (a successful ``result`` only); they are recorded
        ``running`` in the same transaction. If it fails, nothing is recorded and they stay
        pending (:meth:`discard` them).

        A last failed attempt records the step failed and raises ``StepExecutionError`` (the
        user's exception as ``__cause__``), ``StepTimeoutError``, or the runstack error that
        stopped it (an unreadable input, an output no materializer can write).
        """
        sp = task.step
        state = self._in_flight[sp.slot]
        state.attempts.append(self._attempt(task, result))
        assert not started or result.ok
        if result.ok:
            del self._in_flight[sp.slot]
            end = _now()
            record = self._result(
                sp,
                ExecutionStatus.COMPLETED,
                state.start,
                end,
                state.inputs,
                state.cache_key,
                state.components,
                new_outputs=result.outputs,
                logs_uri=result.logs_uri,
                running_step_id=state.running_step_id,
                execution=self._execution(sp, state),
            )
            if started:  # successors left to run: this record cannot end the run
                states = [self._in_flight[t.step.slot] for t in started]
                _, outputs, running_ids = self.metadata_store.record_step_and_start(
                    record, [self._running(t, s) for t, s in zip(started, states, strict=True)]
                )
            else:
                _, outputs = self.metadata_store.record_step(
                    record, run_completed_at=self._run_end(end)
                )
            self._recorded(end)
            self._emit("step_completed", sp, state.start)
            if started:
                by_uri = {a.uri: a for a in outputs.values()}
                for t, s, running_id in zip(started, states, running_ids, strict=True):
                    s.running_step_id, s.pending = running_id, False
                    s.inputs = {n: by_uri.get(a.uri, a) for n, a in s.inputs.items()}
                    self._emit("step_started", t.step)
            return StepOutcome(outputs, ExecutionStatus.COMPLETED)
        if task.attempt <= sp.options.retries:
            delay = sp.options.delay_before(task.attempt + 1)
            self._emit(
                "step_retrying",
                sp,
                state.start,
                f"attempt {task.attempt} of {sp.options.retries + 1} failed: {result.error}; "
                f"retrying in {delay:g} s",
            )
            return self._task(sp, state.inputs, attempt=task.attempt + 1)
        self._record_failure(task, result, state)
        raise self._error(task, result)

    def timed_out(self, task: StepTask) -> TaskResult:
        """The result of an attempt the orchestrator stopped at its time limit."""
        return failed_result(timeout_error(task, task.step.options.timeout or 0))

    def abort(self, task: StepTask, exc: BaseException) -> None:
        """Record a step whose attempt was interrupted (Ctrl-C, a dead worker) as failed."""
        state = self._in_flight.get(task.step.slot)
        if state is None or state.pending:  # pending: its inputs were never recorded
            self.discard(task)
            return
        result = failed_result(exc)
        state.attempts.append(self._attempt(task, result))
        self._record_failure(task, result, state)

    # -- helpers -------------------------------------------------------------------------

    def _run_end(self, end: datetime) -> datetime | None:
        """``end`` when the step being recorded is the run's last: its record ends the run."""
        return end if self._left == 1 else None

    def _recorded(self, end: datetime) -> None:
        self._left -= 1
        if self._left == 0:
            self.completed_at = end

    def _task(self, sp: StepPlan, inputs: dict[str, ArtifactRecord], attempt: int) -> StepTask:
        store, pipeline, run = self.artifact_store, self.plan.pipeline_name, self.run.name
        # Every attempt writes to folders of its own: a failed attempt's files never mix in.
        label = sp.slot if attempt == 1 else f"{sp.slot}@{attempt}"
        return StepTask(
            pipeline_name=pipeline,
            run=self.run,
            step=sp,
            inputs=inputs,
            output_uris={
                name: store.new_uri(pipeline, run, label, name)
                for name in sp.step.SIGNATURE.outputs
            },
            logs_uri=store.logs_uri(pipeline, run, label),
            attempt=attempt,
        )

    @staticmethod
    def _attempt(task: StepTask, result: TaskResult) -> dict[str, Any]:
        return {
            "attempt": task.attempt,
            "start_time": result.start_time.isoformat(),
            "end_time": result.end_time.isoformat(),
            "error": result.error,
            "logs_uri": result.logs_uri,
        }

    def _execution(self, sp: StepPlan, state: _InFlight) -> dict[str, Any]:
        return {"options": sp.options.as_dict(), "attempts": list(state.attempts)}

    def _running(self, task: StepTask, state: _InFlight) -> StepResult:
        return self._result(
            task.step,
            ExecutionStatus.RUNNING,
            state.start,
            state.start,
            state.inputs,
            None,
            state.components,
        )

    def _record_failure(self, task: StepTask, result: TaskResult, state: _InFlight) -> None:
        sp = task.step
        self._in_flight.pop(sp.slot, None)
        # A failed step never becomes a cache hit: it is recorded without its key.
        self.metadata_store.record_step(
            self._result(
                sp,
                ExecutionStatus.FAILED,
                state.start,
                _now(),
                state.inputs,
                None,
                state.components,
                error=result.error,
                traceback=result.traceback,
                logs_uri=result.logs_uri,
                running_step_id=state.running_step_id,
                execution=self._execution(sp, state),
            )
        )
        self._emit("step_failed", sp, state.start, result.error)

    def _error(self, task: StepTask, result: TaskResult) -> BaseException:
        exc = result.exception
        if isinstance(exc, (StepTimeoutError, StepExecutionError)) or (
            isinstance(exc, RunstackError) and not result.user_error
        ):
            return exc
        where = task.where
        error = StepExecutionError(
            f"{where[0].upper()}{where[1:]} failed: {result.error}",
            pipeline=self.plan.pipeline_name,
            run=self.run.name,
            step=task.step.slot,
        )
        error.__cause__ = exc
        return error

    def _result(
        self,
        sp: StepPlan,
        status: ExecutionStatus,
        start: datetime,
        end: datetime,
        inputs: dict[str, ArtifactRecord],
        cache_key: str | None,
        components: dict[str, Any] | None,
        **more: Any,
    ) -> StepResult:
        return StepResult(
            run_id=self.run.id,
            name=sp.slot,
            entrypoint_name=sp.step.NAME,
            position=sp.position,
            status=status,
            parameters=sp.parameters,
            start_time=start,
            end_time=end,
            cache_key=cache_key,
            cache_components=components,
            inputs={n: a.id for n, a in inputs.items()},
            output_order=tuple(sp.step.SIGNATURE.outputs),
            parent_step_names=sp.node.upstream,
            role=sp.step.ROLE,
            **more,
        )

    def _find_cached(
        self, cache_key: str
    ) -> tuple[tuple[int, dict[str, ArtifactRecord]] | None, dict[str, Any]]:
        """The newest earlier execution with this key whose artifacts are all intact.

        Intact: inside the artifact store, with every file the materializer wrote present at
        its recorded size and, below the size up to which reads verify content, matching its
        content hash (see ``artifact_stores._verify``): what a read would refuse is not reused.
        Returns the execution (or None) and the decision to record: a hit names its source
        step and run; a miss lists the candidates passed over and, per output, why.
        """
        passed_over = []
        for step_id, outputs in self.metadata_store.cache_candidates(cache_key):
            problems = {}
            for n, a in sorted(outputs.items()):
                try:
                    problem = _verify.problem(self.artifact_store, a)
                except ArtifactNotFoundError:  # outside the store's root
                    problem = "its URI is outside the artifact store's root"
                if problem is not None:
                    problems[n] = problem
            if not problems:
                run = self.metadata_store.run_names_of_steps([step_id]).get(step_id)
                return (step_id, outputs), {"outcome": "hit", "step_id": step_id, "run": run}
            logger.info(
                "  cached step #%s has damaged artifacts (%s); not reusing it",
                step_id,
                "; ".join(f"{n}: {p}" for n, p in problems.items()),
            )
            passed_over.append({"step_id": step_id, "missing": list(problems), "why": problems})
        if passed_over:
            return None, {"outcome": "miss", "artifacts_missing": passed_over}
        return None, {"outcome": "miss"}
