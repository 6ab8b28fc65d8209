"""Orchestrators decide where and when step tasks run; one scheduling loop serves them all.

An orchestrator is an *executor*: ``submit(task) -> concurrent.futures.Future`` of a
``TaskResult``, ``wait`` for the first of them to finish, plus how much may run at once.
:func:`schedule` does the rest for every one of them: it starts each step whose inputs are
ready (``plan.inputs_for``), asks the runner to prepare it (cache hit, or a task), collects
results as they finish, retries, enforces time limits the worker could not, and on a failure
starts nothing new, lets running steps finish and be recorded, then raises. Workers never
touch the metadata store. Where tasks run in other processes, a finished step's successors
are handed to workers before its record is written (in the same transaction as their
``running`` rows), so in a chain the driver records while the next step runs.
"""

from __future__ import annotations

import concurrent.futures as cf
import heapq
import os
import time
from collections import ChainMap
from collections.abc import Iterable
from typing import Any, Protocol

from runstack.execution._plan import RunPlan, StepPlan
from runstack.execution._step_runner import StepOutcome, StepRunner
from runstack.execution._task import StepTask, TaskResult, execute_task, failed_result
from runstack.execution._worker import (
    RunSteps,
    WorkerStores,
    dump_task,
    steps_payload,
    stores_payload,
)
from runstack.models import ArtifactRecord

# Past its time limit plus this, an attempt the worker did not stop itself is stopped here.
TIMEOUT_GRACE_S = 2.0


class Orchestrator(Protocol):
    def execute(self, plan: RunPlan, runner: StepRunner) -> None:
        """Run every step of ``plan`` through ``runner``, dependencies first."""


class Executor(Protocol):
    """Where tasks run: the one thing an orchestrator adds to :func:`schedule`."""

    capacity: float  # total weight that may run at once
    in_process: bool  # tasks run in this process (in submit() itself, or in threads)

    def weight(self, sp: StepPlan) -> float: ...

    def submit(self, task: StepTask, runner: StepRunner) -> cf.Future[TaskResult]: ...

    def wait(
        self, futures: list[cf.Future[TaskResult]], timeout: float | None
    ) -> Iterable[cf.Future[TaskResult]]:
        """Those of ``futures`` that are done, waiting up to ``timeout`` s for the first."""

    def stop(self, task: StepTask, future: cf.Future[TaskResult]) -> None:
        """Stop an attempt that ran past its time limit (best effort)."""

    def describe_failure(self, exc: BaseException) -> BaseException:
        """The error to record for a task whose worker raised instead of returning."""


def schedule(plan: RunPlan, runner: StepRunner, executor: Executor) -> None:
    produced: dict[tuple[str, str], ArtifactRecord] = {}
    waiting = {sp.position: sp for sp in plan.steps}  # not started yet
    # Of the waiting steps, by position, the upstream steps they still wait for, and those
    # that wait for none: taken in plan order (the smallest position first), so a sequential
    # executor keeps that order. Each finished step updates only its consumers' entries.
    missing = {sp.position: set(sp.node.upstream) for sp in plan.steps}
    ready = [sp.position for sp in plan.steps if not missing[sp.position]]
    running: dict[cf.Future[TaskResult], tuple[StepTask, float | None]] = {}
    delayed: list[tuple[float, StepTask]] = []  # retries waiting for their delay
    # Started before their inputs' record, which then failed: awaited, never recorded.
    withdrawn: set[cf.Future[TaskResult]] = set()
    used = 0.0
    failure: BaseException | None = None

    def start(task: StepTask, record: bool = True) -> cf.Future[TaskResult]:
        nonlocal used
        used += executor.weight(task.step)
        timeout = task.step.options.timeout
        deadline = time.monotonic() + timeout + TIMEOUT_GRACE_S if timeout else None
        # Where a worker process runs the task, the `running` row is written while it starts
        # (in a chain: one metadata write per step off the critical path, ~0.4 ms on Ray).
        # Not in this process: inline the step would already have run, and beside a thread
        # the write only contends for the GIL (no gain measured). Nor for a step that reads
        # the history: it sees itself running.
        early = executor.in_process or task.step.step.SIGNATURE.context_param is not None
        if early and record:
            runner.started(task)
        try:
            future = executor.submit(task, runner)
        except BaseException as e:  # Ctrl-C in a step run in this thread
            runner.abort(task, e)
            raise
        running[future] = (task, deadline)
        if not early and record:
            runner.started(task)
        return future

    def start_successors(
        task: StepTask, result: TaskResult
    ) -> tuple[list[StepTask], Exception | None]:
        """The steps that ``task``'s outputs make ready, prepared before ``task`` is recorded,
        so that its record and their ``running`` rows are one transaction (one write per step
        in a chain, not two). Where tasks run in other processes they are handed to workers
        at once (the record is then written while the next step runs); in this process they
        are started by ``finished`` once the record is written (run now, a step would run
        before its inputs are recorded). Not for steps that read the history: they must see
        their inputs recorded."""
        provisional = runner.provisional_outputs(task, result)
        if not provisional:
            return [], None
        slot = task.step.slot
        # Looked up through both, not merged: a copy of ``produced`` per step is O(steps^2).
        known = ChainMap({(slot, n): a for n, a in provisional.items()}, produced)
        successors: list[StepTask] = []
        held_weight = 0.0  # of those not started yet (in this process)
        for sp in plan.consumers[slot]:
            if sp.position not in waiting or sp.step.SIGNATURE.context_param is not None:
                continue
            inputs = plan.inputs_for(sp, known)
            if inputs is None:
                continue
            weight = executor.weight(sp)
            if (running or successors) and used + held_weight + weight > executor.capacity:
                break  # keep the plan's order: wait for room
            prepared = runner.prepare_pending(sp, inputs)
            if prepared is None:
                continue  # a cache hit: taken once the inputs are recorded
            del waiting[sp.position]
            if executor.in_process:
                held_weight += weight
            else:
                try:
                    start(prepared, record=False)
                except Exception as e:  # raised once ``task`` is recorded, as it was before
                    return successors, e
            successors.append(prepared)
        return successors, None

    def finished(
        task: StepTask, result: TaskResult, future: cf.Future[TaskResult] | None = None
    ) -> None:
        nonlocal used, failure
        used -= executor.weight(task.step)
        if future in withdrawn:
            withdrawn.discard(future)
            runner.discard(task)
            return
        successors, error = start_successors(task, result) if failure is None else ([], None)
        try:
            nxt = runner.finish(task, result, successors)
        except Exception as e:
            failure = failure or e
            for t in successors:
                runner.discard(t)
            # Those already handed to workers are awaited, never recorded.
            withdrawn.update(
                fut for fut, (t, _) in running.items() if any(t is s for s in successors)
            )
            return
        if error is not None:
            raise error
        if executor.in_process:
            for t in successors:  # recorded running with this record: now they may run
                start(runner.recorded(t), record=False)
        if isinstance(nxt, StepTask):
            delay = task.step.options.delay_before(nxt.attempt)
            delayed.append((time.monotonic() + delay, nxt))
        else:
            done(task.step, nxt)

    def done(sp: StepPlan, outcome: StepOutcome) -> None:
        for name, art in outcome.outputs.items():
            produced[(sp.slot, name)] = art
        for consumer in plan.consumers[sp.slot]:
            wants = missing[consumer.position]
            wants.discard(sp.slot)
            if not wants and consumer.position in waiting:
                heapq.heappush(ready, consumer.position)

    try:
        while True:
            if failure is None:
                now = time.monotonic()
                for item in [d for d in delayed if d[0] <= now]:
                    delayed.remove(item)
                    start(item[1])
                # In plan order; a cache hit may make further steps ready at once.
                while ready:
                    sp = waiting.get(ready[0])
                    if sp is None:  # started early, as a successor (see start_successors)
                        heapq.heappop(ready)
                        continue
                    if running and used + executor.weight(sp) > executor.capacity:
                        break  # keep the plan's order: wait for room
                    heapq.heappop(ready)
                    inputs = plan.inputs_for(sp, produced)
                    if inputs is None:  # every upstream step done, yet an output missing
                        continue  # (never ready: reported below)
                    del waiting[sp.position]
                    prepared = runner.prepare(sp, inputs)
                    if isinstance(prepared, StepOutcome):
                        done(sp, prepared)
                    else:
                        start(prepared)
            if not running and (failure is not None or not delayed):
                break
            wait_s = _next_wakeup(running.values(), delayed if failure is None else [])
            for fut in executor.wait(list(running), wait_s):
                task, _ = running.pop(fut)
                try:
                    result = fut.result()
                except Exception as e:  # the worker itself failed (e.g. a Ray worker died)
                    result = failed_result(executor.describe_failure(e))
                finished(task, result, fut)
            now = time.monotonic()
            for fut, (task, deadline) in list(running.items()):
                if deadline is not None and now >= deadline and not fut.done():
                    del running[fut]
                    executor.stop(task, fut)
                    finished(task, runner.timed_out(task), fut)
    except BaseException as e:  # Ctrl-C or an error in here: record what was in flight
        for task, _ in running.values():
            runner.abort(task, e)
        raise
    if failure is not None:
        raise failure
    if waiting:  # only possible with a plan whose inputs are never produced
        raise AssertionError(f"steps never became ready: {[sp.slot for sp in waiting.values()]}")


def wait_first(
    futures: list[cf.Future[TaskResult]], timeout: float | None
) -> Iterable[cf.Future[TaskResult]]:
    """:meth:`Executor.wait` for executors whose futures complete by themselves."""
    return cf.wait(futures, timeout=timeout, return_when=cf.FIRST_COMPLETED).done


def _next_wakeup(running: Any, delayed: list[tuple[float, StepTask]]) -> float | None:
    times = [d for _, d in running if d is not None] + [t for t, _ in delayed]
    if not times:
        return None
    return max(0.0, min(times) - time.monotonic())


# -- local ---------------------------------------------------------------------------------


class LocalOrchestrator:
    """Runs the steps one after another in this process, in the plan's order."""

    capacity = 1.0
    in_process = True

    def execute(self, plan: RunPlan, runner: StepRunner) -> None:
        schedule(plan, runner, self)

    def weight(self, sp: StepPlan) -> float:
        return 1.0

    def submit(self, task: StepTask, runner: StepRunner) -> cf.Future[TaskResult]:
        future: cf.Future[TaskResult] = cf.Future()
        future.set_result(execute_task(task, runner.artifact_store, runner.history))
        return future

    wait = staticmethod(wait_first)

    def stop(self, task: StepTask, future: cf.Future[TaskResult]) -> None:
        pass  # the attempt already ended: it ran in this thread

    def describe_failure(self, exc: BaseException) -> BaseException:
        return exc

    def __repr__(self) -> str:
        return "LocalOrchestrator()"


# -- parallel ------------------------------------------------------------------------------

_worker: WorkerStores | None = None
_steps: RunSteps | None = None
_WORKER_PRELOAD = (
    "cloudpickle",
    "runstack.execution._worker",
    "runstack.metadata_stores",
    "runstack.post_execution",
    "fsspec.implementations.local",  # what writing an output loads on first use
    "xxhash",
)


def _init_worker(payload: bytes, steps: dict[int, bytes]) -> None:
    global _worker, _steps
    _worker, _steps = WorkerStores(payload), RunSteps(steps)


def _run_in_worker(task: bytes) -> TaskResult:
    assert _worker is not None and _steps is not None
    return _worker.execute(_steps.load_task(task))


class ParallelOrchestrator:
    """Runs every step whose inputs are ready at once, up to ``max_workers``.

    ``mode="process"`` (default) runs steps in worker processes; tasks and the step code
    travel by cloudpickle, so steps defined in ``__main__`` or a notebook work. ``mode="thread"``
    runs them in threads of this process. A step's ``resources["cpus"]`` (default 1) is its
    weight against ``max_workers``.
    """

    def __init__(self, max_workers: int | None = None, mode: str = "process") -> None:
        if mode not in ("process", "thread"):
            raise ValueError(f"mode must be 'process' or 'thread', got {mode!r}.")
        self.max_workers = max_workers or os.cpu_count() or 1
        self.mode = mode
        self.capacity = float(self.max_workers)
        self.in_process = mode == "thread"
        self._pool: cf.Executor | None = None
        self._killed = False

    def weight(self, sp: StepPlan) -> float:
        return min(float(sp.options.resources.get("cpus", 1.0)), self.capacity)

    def execute(self, plan: RunPlan, runner: StepRunner) -> None:
        if self.mode == "thread":
            pool: cf.Executor = cf.ThreadPoolExecutor(self.max_workers, "runstack-step")
        else:
            import multiprocessing

            payload = stores_payload(runner.artifact_store, runner.history)
            # forkserver/spawn: no copy of this process's threads and locks in the workers.
            method = (
                "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
            )
            context = multiprocessing.get_context(method)
            if method == "forkserver":
                # The fork server imports runstack once; every worker forked from it starts
                # with it loaded instead of importing it again (seconds on a busy machine).
                # User modules are not preloaded: each run's workers import them afresh.
                context.set_forkserver_preload(["__main__", *_WORKER_PRELOAD])
            pool = cf.ProcessPoolExecutor(
                self.max_workers,
                mp_context=context,
                initializer=_init_worker,
                initargs=(payload, steps_payload(plan)),
            )
        self._pool, self._killed = pool, False
        try:
            schedule(plan, runner, self)
        finally:
            self._pool = None
            pool.shutdown(wait=not self._killed, cancel_futures=True)

    def submit(self, task: StepTask, runner: StepRunner) -> cf.Future[TaskResult]:
        assert self._pool is not None
        if self.mode == "thread":
            return self._pool.submit(execute_task, task, runner.artifact_store, runner.history)
        return self._pool.submit(_run_in_worker, dump_task(task))

    wait = staticmethod(wait_first)

    def stop(self, task: StepTask, future: cf.Future[TaskResult]) -> None:
        future.cancel()
        self._killed = True  # don't wait for it when the run ends
        if self.mode == "process" and self._pool is not None:
            # A worker stuck past its limit (in C code) cannot be interrupted; end the workers.
            # Steps running beside it then fail as their workers die, and the run fails.
            for proc in list(getattr(self._pool, "_processes", {}).values()):
                proc.kill()
        # thread mode: a thread cannot be stopped; its late result is ignored (documented).

    def describe_failure(self, exc: BaseException) -> BaseException:
        if isinstance(exc, cf.process.BrokenProcessPool):
            return RuntimeError(
                "the worker process running the step died (killed, out of memory, or a crash "
                f"in native code): {exc}"
            )
        return exc

    def __repr__(self) -> str:
        return f"ParallelOrchestrator(max_workers={self.max_workers}, mode={self.mode!r})"
