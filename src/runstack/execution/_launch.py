"""Starts a run: records it, lets the orchestrator execute the plan, records how it ended."""

from __future__ import annotations

import os
import socket
from datetime import datetime, timezone
from typing import Any

from runstack.artifact_stores import ArtifactStore
from runstack.exceptions import DuplicateRunNameError, RunstackError
from runstack.execution import _heartbeat
from runstack.execution._events import Listener, RunEvent, log_listener
from runstack.execution._orchestrator import Orchestrator
from runstack.execution._plan import RunPlan
from runstack.execution._step_runner import StepRunner
from runstack.metadata_stores import SQLMetadataStore
from runstack.models import ExecutionStatus, RunRecord


def default_run_name(pipeline_name: str, now: datetime) -> str:
    """``<pipeline>-<UTC timestamp>``: unique enough and sorts by time."""
    return f"{pipeline_name}-{now.strftime('%Y_%m_%d-%H_%M_%S_%f')}"


def launch(
    plan: RunPlan,
    *,
    orchestrator: Orchestrator,
    metadata_store: SQLMetadataStore,
    artifact_store: ArtifactStore,
    history: Any,
    run_name: str | None = None,
    listener: Listener = log_listener,
) -> RunRecord:
    start = datetime.now(timezone.utc)
    if run_name is not None and (not isinstance(run_name, str) or not run_name.strip()):
        raise RunstackError(f"run_name must be a non-empty string, got {run_name!r}.")
    name = run_name or default_run_name(plan.pipeline_name, start)
    for attempt in range(1, 6):
        try:
            run = metadata_store.create_run(
                plan.pipeline_name,
                name,
                start,
                owner_host=socket.gethostname(),
                owner_pid=os.getpid(),
            )
            break
        except DuplicateRunNameError:
            # Generated names can collide when processes start runs in the same microsecond;
            # a name the user chose is theirs to change.
            if run_name is not None or attempt == 5:
                raise
            name = f"{default_run_name(plan.pipeline_name, start)}-{os.getpid()}-{attempt}"
    listener(RunEvent("run_started", plan.pipeline_name, run.name))
    _heartbeat.watch(metadata_store, run.id)
    runner = StepRunner(plan, run, metadata_store, artifact_store, history, listener)
    try:
        orchestrator.execute(plan, runner)
    except BaseException as e:
        metadata_store.finish_run(
            run.id, ExecutionStatus.FAILED, datetime.now(timezone.utc), f"{type(e).__name__}: {e}"
        )
        listener(RunEvent("run_failed", plan.pipeline_name, run.name, detail=str(e)))
        raise
    metadata_store.finish_run(run.id, ExecutionStatus.COMPLETED, datetime.now(timezone.utc))
    listener(RunEvent("run_completed", plan.pipeline_name, run.name))
    return run
