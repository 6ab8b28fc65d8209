"""The portable unit of work: one attempt at one step, and the function that executes it.

A :class:`StepTask` is a small picklable value: the run, the step's plan, the artifact records
of its inputs, the URIs its outputs and log go to, and its time limit. :func:`execute_task`
runs it given the artifact store (and, for steps taking a ``StepContext``, the history), in
this process, a worker process or on a Ray node alike, and returns a :class:`TaskResult`. It
reads inputs and writes artifacts; it never writes to the metadata store: the driver records
every step, once, from the result.
"""

from __future__ import annotations

import contextlib
import io
import signal
import threading
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from runstack.artifact_stores import _verify
from runstack.exceptions import (
    ArtifactCorruptedError,
    ArtifactNotFoundError,
    MaterializerError,
    RunstackError,
    StepOutputError,
    StepTimeoutError,
)
from runstack.execution import _cache, _logs
from runstack.execution._plan import StepPlan
from runstack.materializers import Artifact, BaseMaterializer, registry
from runstack.materializers._base import type_path
from runstack.materializers._read import load_data_type, load_materializer, read_artifact
from runstack.models import INLINE_FILE, ArtifactRecord, NewArtifact, RunRecord
from runstack.steps import StepContext
from runstack.steps._signature import coerce_output, concrete_class, matches_type, type_name


def _now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class StepTask:
    """One attempt at one step of one run: everything a worker needs, and nothing live."""

    pipeline_name: str
    run: RunRecord
    step: StepPlan
    inputs: dict[str, ArtifactRecord]
    output_uris: dict[str, str]
    logs_uri: str
    attempt: int = 1

    @property
    def where(self) -> str:
        return (
            f"step {self.step.slot!r} ({self.step.step.NAME}) of pipeline "
            f"{self.pipeline_name!r} in run {self.run.name!r}"
        )


@dataclass(frozen=True)
class TaskResult:
    """What one attempt did. ``error`` is None when it succeeded."""

    start_time: datetime
    end_time: datetime
    outputs: tuple[NewArtifact, ...] = ()
    logs_uri: str | None = None
    error: str | None = None
    traceback: str | None = None
    # The exception itself where it pickles, so the driver can chain it as ``__cause__``.
    exception: BaseException | None = None
    # True when the user's code raised (and a retry may help); False for runstack's own checks.
    user_error: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None


def execute_task(task: StepTask, artifact_store: Any, history: Any = None) -> TaskResult:
    """Run ``task``: load inputs, call the step, write its outputs and log; never raises for
    a failing step (the result says what failed), only for interrupts (KeyboardInterrupt)."""
    start = _now()
    sp = task.step
    logs: _logs.StepLogs | None = None
    try:
        kwargs = _load_inputs(task, artifact_store)
        kwargs.update(_extras(task, history, artifact_store))
        with _deadline(sp.options.timeout, task), _logs.capture() as logs:
            returned = sp.step.entrypoint(**kwargs)
    except RunstackError as e:
        return _failure(task, artifact_store, start, e, logs, user_error=logs is not None)
    except Exception as e:
        return _failure(task, artifact_store, start, e, logs, user_error=True)
    try:
        values = _split_outputs(task, returned)
        new = _write_outputs(task, values, artifact_store)
    except RunstackError as e:
        for uri in task.output_uris.values():  # outputs published before the failing one
            artifact_store.remove(uri)
        return _failure(task, artifact_store, start, e, logs, user_error=False)
    return TaskResult(start, _now(), new, _write_logs(task, artifact_store, logs))


def _failure(
    task: StepTask,
    artifact_store: Any,
    start: datetime,
    exc: BaseException,
    logs: _logs.StepLogs | None,
    *,
    user_error: bool,
) -> TaskResult:
    tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return TaskResult(
        start,
        _now(),
        logs_uri=_write_logs(task, artifact_store, logs) if logs is not None else None,
        error=f"{type(exc).__name__}: {exc}",
        traceback=tb,
        exception=exc,
        user_error=user_error,
    )


def failed_result(exc: BaseException) -> TaskResult:
    """The result of an attempt that ended outside the step (stopped, or its worker died)."""
    now = _now()
    return TaskResult(now, now, error=f"{type(exc).__name__}: {exc}", exception=exc)


# -- time limit ---------------------------------------------------------------------------


@contextlib.contextmanager
def _deadline(seconds: float | None, task: StepTask) -> Iterator[None]:
    """Raise StepTimeoutError inside the step after ``seconds``, where Python allows it.

    That is in the main thread of a process (the local orchestrator, worker processes, Ray
    workers), through SIGALRM; a step blocked in C code is stopped when it returns to Python.
    Elsewhere (threads) the orchestrator enforces the limit from outside.
    """
    usable = (
        seconds is not None
        and hasattr(signal, "setitimer")
        and threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGALRM) in (signal.SIG_DFL, signal.SIG_IGN, None)
    )
    if not usable:
        yield
        return
    assert seconds is not None

    def expired(signum: int, frame: Any) -> None:
        raise timeout_error(task, seconds)

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def timeout_error(task: StepTask, seconds: float) -> StepTimeoutError:
    where = task.where
    return StepTimeoutError(
        f"{where[0].upper()}{where[1:]} ran longer than its timeout of {seconds:g} s and was "
        "stopped. Raise the limit with @step(timeout=...) or the step's `timeout` in the "
        "pipeline config, or make the step faster.",
        pipeline=task.pipeline_name,
        run=task.run.name,
        step=task.step.slot,
    )


# -- inputs -------------------------------------------------------------------------------


def _load_inputs(task: StepTask, artifact_store: Any) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    for name, declared in task.step.step.SIGNATURE.inputs.items():
        art = task.inputs[name]
        try:
            materializer = load_materializer(art.materializer)  # checked before any import
            data_type = concrete_class(declared) or load_data_type(art.data_type)
            _verify.verify(artifact_store, art)  # confines the URI to the store, too
            # A value kept with its record needs no filesystem (nor fsspec's import).
            fs = None if art.inline is not None else artifact_store.fs
            kwargs[name] = read_artifact(art, materializer, data_type, fs)
        except (ArtifactNotFoundError, ArtifactCorruptedError, MaterializerError) as e:
            raise type(e)(f"Cannot load input {name!r} of {task.where}: {e}") from e
        except (ImportError, AttributeError) as e:
            raise MaterializerError(
                f"Cannot load input {name!r} of {task.where}: {art.label.lower()} at {art.uri} was "
                f"written as {art.data_type} by {art.materializer}, which cannot be imported "
                f"({e}). Install or restore that code, or re-run the producing step."
            ) from e
    return kwargs


def _extras(task: StepTask, history: Any, artifact_store: Any) -> dict[str, Any]:
    sp = task.step
    sig = sp.step.SIGNATURE
    extras: dict[str, Any] = {}
    if sig.config_param is not None:
        extras[sig.config_param] = sp.config
    if sig.context_param is not None:
        outputs = {
            name: (uri, sp.materializers[name] or BaseMaterializer)
            for name, uri in task.output_uris.items()
        }
        extras[sig.context_param] = StepContext(
            sp.slot,
            history,
            outputs,
            run_name=task.run.name,
            pipeline_name=task.pipeline_name,
        )
    return extras


# -- outputs ------------------------------------------------------------------------------


def _split_outputs(task: StepTask, returned: Any) -> dict[str, Any]:
    declared = task.step.step.SIGNATURE.outputs
    where = task.where

    def error(message: str) -> StepOutputError:
        return StepOutputError(
            message, pipeline=task.pipeline_name, run=task.run.name, step=task.step.slot
        )

    if not declared:
        if returned is not None:
            raise error(
                f"{where} declares no outputs but returned {type(returned).__name__}. "
                "Annotate its return type (-> int, or -> Output(name=type, ...)) to store it."
            )
        return {}
    if len(declared) == 1:
        values = {next(iter(declared)): returned}
    else:
        if not isinstance(returned, (tuple, list)) or len(returned) != len(declared):
            got = (
                f"{len(returned)} values"
                if isinstance(returned, (tuple, list))
                else f"one {type(returned).__name__}"
            )
            raise error(
                f"{where} declares {len(declared)} outputs ({', '.join(declared)}) but "
                f"returned {got}. Return a tuple with one value per output, in order."
            )
        values = dict(zip(declared, returned, strict=True))
    for name, value in values.items():
        if not matches_type(value, declared[name]):
            raise error(
                f"{where} returned {type(value).__name__} for output {name!r}, declared as "
                f"{type_name(declared[name])}. Return a {type_name(declared[name])} or change "
                "the annotation."
            )
        values[name] = coerce_output(value, declared[name])  # np.int64 for `-> int`: an int
    return values


def _write_outputs(
    task: StepTask, values: dict[str, Any], artifact_store: Any
) -> tuple[NewArtifact, ...]:
    written: list[NewArtifact] = []
    sp = task.step
    for name, value in values.items():
        materializer = sp.materializers[name] or registry.find(type(value))
        if materializer is None:
            raise MaterializerError(
                f"Output {name!r} of {task.where} is a {type_path(type(value))}, and no "
                "materializer handles that type. Subclass runstack.materializers."
                f"BaseMaterializer with ASSOCIATED_TYPES = ({type(value).__name__},), or use "
                "step.with_return_materializers(...)."
            )
        uri = task.output_uris[name]
        inline: bytes | None = None
        try:
            limit = _cache.inline_limit(materializer)
            if limit:
                # Written to memory first: a small value is kept with its record (reading it
                # later opens no file), anything else is published as files as usual.
                buffered: dict[str, bytes] = {}
                writer = materializer(Artifact(uri, None, buffered))
                writer.handle_return(value)
                if list(buffered) == [INLINE_FILE] and len(buffered[INLINE_FILE]) <= limit:
                    inline = buffered[INLINE_FILE]
                else:
                    # Published as files, all or nothing, as if written in place.
                    artifact_store.put(uri, [(n, io.BytesIO(d)) for n, d in buffered.items()])
            else:
                with artifact_store.staged(uri) as staging:
                    writer = materializer(Artifact(staging, artifact_store.fs))
                    writer.handle_return(value)
        except RunstackError as e:
            raise MaterializerError(f"Cannot write output {name!r} of {task.where}: {e}") from e
        except Exception as e:
            raise MaterializerError(
                f"{materializer.__name__} failed to write output {name!r} of "
                f"{task.where}: {type(e).__name__}: {e}"
            ) from e
        data_type, mat_path = type_path(type(value)), type_path(materializer)
        # Listed and hashed once, right after writing, while the files are in the page cache;
        # reads and cache reuse compare against both (see artifact_stores._verify). An inline
        # value has no files: its record holds its bytes.
        files = None if inline is not None else _verify.manifest(artifact_store, uri)
        digest = _verify.content_hash(
            artifact_store, uri, data_type, mat_path, files, inline=inline
        )
        written.append(
            NewArtifact(
                name, uri, data_type, mat_path, digest, writer.storage_format, inline, files
            )
        )
    return tuple(written)


def _write_logs(task: StepTask, artifact_store: Any, logs: _logs.StepLogs | None) -> str | None:
    """Store what the step printed or logged; no file when it was silent."""
    text = logs.text if logs is not None else ""
    if not text:
        return None
    uri = task.logs_uri
    try:
        with (
            artifact_store.staged(uri) as staging,
            Artifact(staging, artifact_store.fs).open(_logs.LOGS_FILE, "wb") as f,
        ):
            f.write(text.encode("utf-8", "replace"))
    except OSError as e:  # losing the log must not lose the step's result
        import logging

        logging.getLogger("runstack").warning("Could not store the logs of %s: %s", task.where, e)
        return None
    return uri
