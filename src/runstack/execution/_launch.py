"""Starts a run: records it, lets the orchestrator execute the plan, records how it ended."""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Mapping
from contextlib import nullcontext
from datetime import datetime, timezone
from typing import Any

from runstack.artifact_stores import ArtifactStore
from runstack.exceptions import DuplicateRunNameError, RunstackError, StoreError
from runstack.execution import _heartbeat, _logs
from runstack.execution._events import Listener, RunEvent, log_listener
from runstack.execution._orchestrator import Orchestrator
from runstack.execution._plan import RunPlan
from runstack.execution._signals import sigterm_as_interrupt
from runstack.execution._step_runner import StepRunner
from runstack.metadata_stores import SQLMetadataStore, _liveness
from runstack.metadata_stores._names import check_name, fit_name
from runstack.metadata_stores._tags import check_tags
from runstack.models import ExecutionStatus, RunRecord


def default_run_name(pipeline_name: str, now: datetime, suffix: str = "") -> str:
    """``<pipeline>-<UTC timestamp>``: unique enough and sorts by time (a long pipeline name
    is shortened so the name fits the store)."""
    return fit_name(pipeline_name, f"-{now.strftime('%Y_%m_%d-%H_%M_%S_%f')}{suffix}")


def check_names(plan: RunPlan, run_name: str | None) -> None:
    """Every name the run will record fits the store, checked before anything runs."""
    check_name("pipeline", plan.pipeline_name)
    if run_name is not None:
        check_name("run", run_name)
    for sp in plan.steps:
        check_name("step", sp.slot)
        check_name("step", sp.step.NAME)
        where = f"step {sp.slot!r}"
        for kind, names in (
            (f"output of {where}", sp.step.SIGNATURE.outputs),
            (f"input of {where}", sp.node.inputs),
            (f"parameter of {where}", sp.parameters),
        ):
            for n in names:
                check_name(kind, n)


def launch(
    plan: RunPlan,
    *,
    orchestrator: Orchestrator,
    metadata_store: SQLMetadataStore,
    artifact_store: ArtifactStore,
    history: Any,
    run_name: str | None = None,
    listener: Listener = log_listener,
    tags: Mapping[str, str] | None = None,
) -> RunRecord:
    """Record a run of ``plan``, execute it, record how it ended; return its record as the
    store now holds it."""
    start = datetime.now(timezone.utc)
    tags = check_tags(tags)  # before anything is recorded or run
    if run_name is not None and (not isinstance(run_name, str) or not run_name.strip()):
        raise RunstackError(f"run_name must be a non-empty string, got {run_name!r}.")
    check_names(plan, run_name)
    name = run_name or default_run_name(plan.pipeline_name, start)
    # Runs whose process died are recorded failed here (views only show them so).
    _liveness.reconcile(metadata_store)
    for attempt in range(1, 6):
        try:
            run = metadata_store.create_run(
                plan.pipeline_name,
                name,
                start,
                owner_host=_liveness.this_host(),
                owner_pid=os.getpid(),
                owner_ns=_liveness.this_namespace(),
                tags=tags,
            )
            break
        except DuplicateRunNameError:
            # Generated names can collide when processes start runs in the same microsecond;
            # a name the user chose is theirs to change.
            if run_name is not None or attempt == 5:
                raise
            name = default_run_name(plan.pipeline_name, start, f"-{os.getpid()}-{attempt}")
    listener(RunEvent("run_started", plan.pipeline_name, run.name))
    _heartbeat.watch(metadata_store, run.id)
    runner = StepRunner(plan, run, metadata_store, artifact_store, history, listener)
    try:
        try:
            # Steps run in this process: their output is captured through streams swapped
            # once for the whole run.
            in_process = getattr(orchestrator, "in_process", False)
            with sigterm_as_interrupt(), _logs.redirected() if in_process else nullcontext():
                orchestrator.execute(plan, runner)
        except BaseException as e:
            _record_failure(metadata_store, run, e)
            listener(RunEvent("run_failed", plan.pipeline_name, run.name, detail=str(e)))
            raise
        end = runner.completed_at  # recorded with the last step
        if end is None:  # a run without steps
            end = datetime.now(timezone.utc)
            metadata_store.finish_run(run.id, ExecutionStatus.COMPLETED, end)
        run = dataclasses.replace(run, status=ExecutionStatus.COMPLETED, end_time=end)
    finally:
        # Over: beat no more (a store gone by the next beat would be retried for ever).
        _heartbeat.unwatch(metadata_store, run.id)
    listener(RunEvent("run_completed", plan.pipeline_name, run.name))
    return run


def _record_failure(metadata_store: SQLMetadataStore, run: RunRecord, e: BaseException) -> None:
    """Record the run failed if the store still takes a write; the original error is the one
    the caller sees either way (with a note when even this write failed)."""
    try:
        metadata_store.finish_run(
            run.id, ExecutionStatus.FAILED, datetime.now(timezone.utc), f"{type(e).__name__}: {e}"
        )
    except StoreError as failed:
        note = (
            f"The run's failure could not be recorded either ({failed}). It shows as failed "
            "once its process has ended; `runstack run reconcile` records it."
        )
        add_note = getattr(e, "add_note", None)  # Python 3.11+
        if add_note is not None:
            add_note(note)
        else:
            logging.getLogger("runstack").error(note)
