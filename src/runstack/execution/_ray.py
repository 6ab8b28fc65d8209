"""The Ray orchestrator: each step a Ray task, started as soon as its inputs are ready.

Ray is imported only when a run starts (``pip install runstack[ray]``). The driver keeps the
one scheduling loop (:func:`~runstack.execution._orchestrator.schedule`): it records every
step, once, so an SQLite store works with a local Ray instance. The stack's stores (as their
settings, ~0.5 KB) and the run's step definitions (~1 KB a step) are pickled once per run;
each task carries the stores' bytes, its own step's and the small rest of the task, inline in
Ray's task spec. A worker rebuilds the stores once per process (by the hash of their bytes)
and unpickles the step for each task. (An ``ObjectRef`` to a per-run payload cost more: a
nested reference makes the worker a borrower, reported back to the driver for every task,
and every worker fetched and unpickled the payload once per run.) Workers read inputs from
and write outputs to the artifact store and return a small
:class:`~runstack.execution._task.TaskResult`; values never travel only through Ray's object
store, so history and caching hold as for a local run.
"""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import math
import time
from collections.abc import Iterable
from typing import Any

from runstack.exceptions import ConfigError
from runstack.execution._orchestrator import schedule
from runstack.execution._plan import RunPlan, StepPlan
from runstack.execution._step_runner import StepRunner
from runstack.execution._task import StepTask, TaskResult, failed_result
from runstack.execution._worker import (
    WorkerStores,
    dump_task,
    load_task,
    step_payload,
    stores_payload,
)

INSTALL_HINT = "pip install 'runstack[ray]'"


def import_ray() -> Any:
    try:
        import ray
    except ImportError as e:
        raise ConfigError(
            f"The ray orchestrator needs Ray, which is not installed ({e}). Run `{INSTALL_HINT}`, "
            "or switch to another orchestrator (`runstack orchestrator flavors`)."
        ) from e
    return ray


# -- on the worker ------------------------------------------------------------------------

# Stores rebuilt from their settings, per worker process and stack (Ray reuses its worker
# processes across tasks and runs); the last few stacks' are kept.
_worker_stores: dict[str, WorkerStores] = {}
STORES_KEPT = 4


def _execute_on_worker(stores_key: str, stores: bytes, step: bytes, task: bytes) -> TaskResult:
    try:
        worker = _worker_stores.get(stores_key)
        if worker is None:
            worker = _worker_stores[stores_key] = WorkerStores(stores)
            for old in list(_worker_stores)[:-STORES_KEPT]:
                del _worker_stores[old]
        loaded = load_task(task, step)
    except Exception as e:  # the step's code, or a store's backend, is missing on this node
        import socket

        return failed_result(
            RuntimeError(
                f"Cannot load the step on Ray worker {socket.gethostname()}: "
                f"{type(e).__name__}: {e}. Everything a step imports must be importable on "
                "the workers: install it there, or ship it with the ray orchestrator's "
                "runtime_env (working_dir, py_modules, pip)."
            )
        )
    return worker.execute(loaded)


# -- resources ----------------------------------------------------------------------------


def ray_options(resources: dict[str, float]) -> dict[str, Any]:
    """``@step(resources=...)`` as keyword arguments of Ray's ``.options()``."""
    opts: dict[str, Any] = {}
    custom: dict[str, float] = {}
    for key, value in resources.items():
        if key == "cpus":
            opts["num_cpus"] = value
        elif key == "gpus":
            opts["num_gpus"] = value
        elif key == "memory":
            opts["memory"] = int(value)
        else:
            custom[key] = value
    if custom:
        opts["resources"] = custom
    return opts


def _demand(resources: dict[str, float]) -> dict[str, float]:
    """What a step asks of one node, in Ray's resource names (a task takes 1 CPU unless told)."""
    names = {"cpus": "CPU", "gpus": "GPU", "memory": "memory"}
    need = {names.get(k, k): float(v) for k, v in resources.items()}
    if "cpus" not in resources:
        need["CPU"] = 1.0
    return {k: v for k, v in need.items() if v > 0}


_nodes_seen: tuple[str, float, list[dict[str, Any]]] | None = None
NODES_TTL_S = 30.0


def _nodes(ray: Any, fresh: bool = False) -> list[dict[str, Any]]:
    """The cluster's nodes, remembered for a while within one connection to Ray (asking
    costs ~10 ms on every run)."""
    global _nodes_seen
    now, job = time.monotonic(), ray.get_runtime_context().get_job_id()
    seen = _nodes_seen
    if fresh or seen is None or seen[0] != job or now - seen[1] > NODES_TTL_S:
        seen = _nodes_seen = (job, now, ray.nodes())
    return seen[2]


def check_feasible(plan: RunPlan, nodes: list[dict[str, Any]]) -> None:
    """Refuse, before any step runs, a step that no node of the cluster could ever take.

    Ray would otherwise keep such a task pending forever (an "infeasible" warning in its log).
    """
    alive = [n.get("Resources", {}) for n in nodes if n.get("Alive", True)]
    for sp in plan.steps:
        need = _demand(dict(sp.options.resources))
        if any(all(node.get(k, 0.0) >= v for k, v in need.items()) for node in alive):
            continue
        have = [
            {k: v for k, v in node.items() if not k.startswith(("node:", "object_store"))}
            for node in alive
        ]
        raise ConfigError(
            f"Step {sp.slot!r} asks Ray for {need}, which no node of the cluster has (nodes: "
            f"{have}); Ray would keep it waiting forever. Lower the step's resources, add a "
            "node that has them (`ray start --resources='{\"name\": 1}'`, `--num-gpus`), or, "
            "on an autoscaling cluster that adds such nodes on demand, set the orchestrator's "
            "check_resources=false."
        )


# -- on the driver ------------------------------------------------------------------------

_remote_fn: Any = None


class RayOrchestrator:
    """Runs each step as a Ray task, scheduled as soon as its inputs are ready.

    ``address``: unset = the Ray instance this process already started with ``ray.init(...)``,
    else start (or join, through ``RAY_ADDRESS``) a local one; ``"auto"`` = the cluster this
    machine belongs to; ``"ray://host:10001"`` = a remote cluster through Ray Client.
    ``runtime_env`` is given to every step's task as is. A step's ``resources`` become the
    task's ``num_cpus``, ``num_gpus``, ``memory`` and custom resources.
    """

    capacity = math.inf  # Ray queues tasks until their resources are free
    in_process = False

    def __init__(
        self,
        address: str | None = None,
        runtime_env: dict[str, Any] | None = None,
        check_resources: bool = True,
    ) -> None:
        self.address = address
        self.runtime_env = dict(runtime_env) if runtime_env else None
        self.check_resources = check_resources
        self._ray: Any = None
        # This run's stores (their hash and bytes) and the step definitions pickled so far,
        # by position; the steps still to pickle (see wait()).
        self._shipped: tuple[str, bytes, dict[int, bytes]] | None = None
        self._to_pickle: dict[int, StepPlan] = {}
        self._refs: dict[cf.Future[TaskResult], Any] = {}
        # The remote function with each step's task options, made once per run and options
        # (``.options()`` costs ~50 us a call).
        self._remotes: dict[tuple[tuple[str, float], ...], Any] = {}

    def execute(self, plan: RunPlan, runner: StepRunner) -> None:
        global _remote_fn
        ray = self._ray = import_ray()
        if not ray.is_initialized():
            # A Ray instance this process started itself is reused as it is (with its
            # num_cpus, namespace...); otherwise connect as configured.
            ray.init(address=self.address)
        if self.check_resources:
            try:
                check_feasible(plan, _nodes(ray))
            except ConfigError:  # decided on a remembered list: ask the cluster again
                check_feasible(plan, _nodes(ray, fresh=True))
        if _remote_fn is None:
            _remote_fn = ray.remote(_execute_on_worker)
        stores = stores_payload(runner.artifact_store, runner.history)
        self._shipped = (hashlib.sha256(stores).hexdigest(), stores, {})
        self._to_pickle = {sp.position: sp for sp in plan.steps}
        self._refs, self._remotes = {}, {}
        try:
            schedule(plan, runner, self)
        finally:
            # After Ctrl-C or an error in the loop, nothing of this run keeps running on Ray.
            for fut, ref in self._refs.items():
                if not fut.done():
                    ray.cancel(ref, force=True)
            self._refs, self._shipped, self._to_pickle = {}, None, {}

    def weight(self, sp: StepPlan) -> float:
        return 1.0

    def submit(self, task: StepTask, runner: StepRunner) -> cf.Future[TaskResult]:
        assert self._shipped is not None
        resources = task.step.options.resources
        key = tuple(sorted(resources.items()))
        remote = self._remotes.get(key)
        if remote is None:
            # Ray does not retry a task whose worker died: runstack's retries do, recording
            # each.
            opts: dict[str, Any] = {"max_retries": 0, **ray_options(dict(resources))}
            if self.runtime_env:
                opts["runtime_env"] = self.runtime_env
            remote = self._remotes[key] = _remote_fn.options(**opts)
        stores_key, stores, _ = self._shipped
        ref = remote.remote(stores_key, stores, self._step_bytes(task.step), dump_task(task))
        # Completed by wait() below: ObjectRef.future() costs a callback thread's hand-off
        # (~0.5 ms a step) that ray.wait in the scheduling loop does not.
        future: cf.Future[TaskResult] = cf.Future()
        self._refs[future] = ref
        return future

    def wait(
        self, futures: list[cf.Future[TaskResult]], timeout: float | None
    ) -> Iterable[cf.Future[TaskResult]]:
        done = [f for f in futures if f.done()]
        if done:
            return done
        by_ref = {self._refs[f]: f for f in futures}
        # While the tasks run, pickle the definitions of steps still to come: done at their
        # submit instead, in a chain that is on the critical path (~0.1 ms a step).
        while self._to_pickle and not self._ray.wait(list(by_ref), timeout=0)[0]:
            self._step_bytes(next(iter(self._to_pickle.values())))  # in the plan's order
        ready, rest = self._ray.wait(list(by_ref), num_returns=1, timeout=timeout)
        if ready and rest:  # any others that finished too, so none is taken for overdue
            ready += self._ray.wait(rest, num_returns=len(rest), timeout=0)[0]
        for ref in ready:
            future = by_ref[ref]
            try:
                future.set_result(self._ray.get(ref))
            except Exception as e:  # the worker died, the task was cancelled...
                future.set_exception(e)
        return [by_ref[ref] for ref in ready]

    def _step_bytes(self, sp: StepPlan) -> bytes:
        assert self._shipped is not None
        steps = self._shipped[2]
        data = steps.get(sp.position)
        if data is None:
            data = steps[sp.position] = step_payload(sp)
            del self._to_pickle[sp.position]
        return data

    def stop(self, task: StepTask, future: cf.Future[TaskResult]) -> None:
        # The step did not stop itself at its limit (stuck in native code): end its worker.
        ref = self._refs.pop(future, None)
        if ref is not None:
            self._ray.cancel(ref, force=True)

    def describe_failure(self, exc: BaseException) -> BaseException:
        errors = self._ray.exceptions
        died = tuple(
            getattr(errors, name)
            for name in (
                "WorkerCrashedError",
                "NodeDiedError",
                "OutOfMemoryError",
                "LocalRayletDiedError",
                "OwnerDiedError",
                "ObjectLostError",
            )
            if hasattr(errors, name)
        )
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        if isinstance(exc, died):
            error = RuntimeError(
                f"the Ray worker running the step died ({type(exc).__name__}: {first}). It "
                "was killed, ran out of memory, or crashed in native code; see the worker's "
                "log under /tmp/ray/session_latest/logs on its node. Ray does not retry it; "
                "@step(retries=N) does."
            )
        elif isinstance(exc, errors.RayError):
            error = RuntimeError(f"Ray could not run the step: {type(exc).__name__}: {first}")
        else:
            return exc
        error.__cause__ = exc
        return error

    def __repr__(self) -> str:
        return f"RayOrchestrator(address={self.address!r})"
