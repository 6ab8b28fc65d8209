"""The one step runner every orchestrator calls: inputs -> cache -> call -> outputs -> record."""

from __future__ import annotations

import logging
import traceback
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from runstack.artifact_stores import ArtifactStore
from runstack.exceptions import (
    ArtifactNotFoundError,
    MaterializerError,
    RunstackError,
    StepExecutionError,
    StepOutputError,
)
from runstack.execution import _cache, _heartbeat, _logs
from runstack.execution._events import Listener, RunEvent, log_listener
from runstack.execution._plan import RunPlan, StepPlan
from runstack.materializers import Artifact, BaseMaterializer, registry
from runstack.materializers._base import type_path
from runstack.materializers._read import load_path as _load
from runstack.materializers._read import read_artifact
from runstack.metadata_stores import SQLMetadataStore
from runstack.models import ArtifactRecord, ExecutionStatus, NewArtifact, RunRecord, StepResult
from runstack.steps import StepContext
from runstack.steps._signature import concrete_class, matches_type, type_name

logger = logging.getLogger("runstack")


def _now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class StepOutcome:
    outputs: dict[str, ArtifactRecord]
    status: ExecutionStatus


class StepRunner:
    """Runs the steps of one run against one metadata store and artifact store."""

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
        _heartbeat.watch(metadata_store, run.id)

    def _where(self, sp: StepPlan) -> str:
        return (
            f"step {sp.slot!r} ({sp.step.NAME}) of pipeline {self.plan.pipeline_name!r} "
            f"in run {self.run.name!r}"
        )

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

    def run_step(self, sp: StepPlan, inputs: dict[str, ArtifactRecord]) -> StepOutcome:
        start = _now()
        self._emit("step_started", sp)
        cache_key = None
        parts = self._cache_components(sp, inputs)
        if sp.cache_enabled:
            cache_key = _cache.digest(parts)
            hit, decision = self._find_cached(cache_key)
            if hit is not None:
                source_id, outputs = hit
                self._record(
                    sp,
                    ExecutionStatus.CACHED,
                    start,
                    inputs,
                    cache_key,
                    _cache.with_decision(parts, decision),
                    reused=outputs,
                    cached_from=source_id,
                )
                self._emit("step_cached", sp, start, f"from run {decision['run']!r}")
                return StepOutcome(outputs, ExecutionStatus.CACHED)
        else:
            decision = _cache.disabled_decision(sp)
        components = _cache.with_decision(parts, decision)

        output_uris = {
            name: self.artifact_store.new_uri(self.plan.pipeline_name, self.run.name, sp.slot, name)
            for name in sp.step.SIGNATURE.outputs
        }
        try:
            kwargs = self._load_inputs(sp, inputs)
            kwargs.update(self._extras(sp, output_uris))
        except RunstackError as e:
            self._fail(sp, start, inputs, cache_key, components, e)
            raise

        logs = None
        try:
            with _logs.capture() as logs:
                returned = sp.step.entrypoint(**kwargs)
        except Exception as e:
            self._fail(sp, start, inputs, cache_key, components, e, logs)
            raise StepExecutionError(
                f"{self._where(sp)[0].upper()}{self._where(sp)[1:]} failed: "
                f"{type(e).__name__}: {e}",
                pipeline=self.plan.pipeline_name,
                run=self.run.name,
                step=sp.slot,
            ) from e
        except BaseException as e:  # KeyboardInterrupt, SystemExit: record, then let it through
            self._fail(sp, start, inputs, cache_key, components, e, logs)
            raise

        try:
            values = self._split_outputs(sp, returned)
            new = self._write_outputs(sp, values, output_uris)
        except RunstackError as e:
            for uri in output_uris.values():  # outputs published before the failing one
                self.artifact_store.remove(uri)
            self._fail(sp, start, inputs, cache_key, components, e, logs)
            raise
        outputs = self._record(
            sp,
            ExecutionStatus.COMPLETED,
            start,
            inputs,
            cache_key,
            components,
            new=new,
            logs_uri=self._write_logs(sp, logs),
        )
        self._emit("step_completed", sp, start)
        return StepOutcome(outputs, ExecutionStatus.COMPLETED)

    # -- cache ---------------------------------------------------------------------------

    def _cache_components(self, sp: StepPlan, inputs: dict[str, ArtifactRecord]) -> dict[str, Any]:
        return _cache.components(self.plan.pipeline_name, sp, inputs)

    def _find_cached(
        self, cache_key: str
    ) -> tuple[tuple[int, dict[str, ArtifactRecord]] | None, dict[str, Any]]:
        """The newest earlier execution with this key whose artifacts all still exist.

        Returns it (or None) and the decision to record: a hit names its source step and run;
        a miss lists candidates that were passed over because artifacts had gone missing.
        """
        passed_over = []
        for step_id, outputs in self.metadata_store.cache_candidates(cache_key):
            missing = sorted(
                n
                for n, a in outputs.items()
                if not _cache.artifact_present(self.artifact_store, a.uri)
            )
            if not missing:
                run = self.metadata_store.run_names_of_steps([step_id]).get(step_id)
                return (step_id, outputs), {"outcome": "hit", "step_id": step_id, "run": run}
            logger.info(
                "  cached step #%s has missing artifacts (%s); not reusing it",
                step_id,
                ", ".join(missing),
            )
            passed_over.append({"step_id": step_id, "missing": missing})
        if passed_over:
            return None, {"outcome": "miss", "artifacts_missing": passed_over}
        return None, {"outcome": "miss"}

    # -- inputs --------------------------------------------------------------------------

    def _load_inputs(self, sp: StepPlan, inputs: dict[str, ArtifactRecord]) -> dict[str, Any]:
        kwargs: dict[str, Any] = {}
        for name, declared in sp.step.SIGNATURE.inputs.items():
            art = inputs[name]
            try:
                data_type = concrete_class(declared) or _load(art.data_type)
                kwargs[name] = read_artifact(art, _load(art.materializer), data_type)
            except (ArtifactNotFoundError, MaterializerError) as e:
                raise type(e)(f"Cannot load input {name!r} of {self._where(sp)}: {e}") from e
            except (ImportError, AttributeError) as e:
                raise MaterializerError(
                    f"Cannot load input {name!r} of {self._where(sp)}: artifact #{art.id} was "
                    f"written as {art.data_type} by {art.materializer}, which cannot be imported "
                    f"({e}). Install or restore that code, or re-run the producing step."
                ) from e
        return kwargs

    def _extras(self, sp: StepPlan, output_uris: dict[str, str]) -> dict[str, Any]:
        sig = sp.step.SIGNATURE
        extras: dict[str, Any] = {}
        if sig.config_param is not None:
            extras[sig.config_param] = sp.config
        if sig.context_param is not None:
            outputs = {
                name: (uri, sp.materializers[name] or BaseMaterializer)
                for name, uri in output_uris.items()
            }
            extras[sig.context_param] = StepContext(
                sp.slot,
                self.history,
                outputs,
                run_name=self.run.name,
                pipeline_name=self.plan.pipeline_name,
            )
        return extras

    # -- outputs -------------------------------------------------------------------------

    def _split_outputs(self, sp: StepPlan, returned: Any) -> dict[str, Any]:
        declared = sp.step.SIGNATURE.outputs
        where = self._where(sp)
        if not declared:
            if returned is not None:
                raise StepOutputError(
                    f"{where} declares no outputs but returned {type(returned).__name__}. "
                    "Annotate its return type (-> int, or -> Output(name=type, ...)) to store it.",
                    pipeline=self.plan.pipeline_name,
                    run=self.run.name,
                    step=sp.slot,
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
                raise StepOutputError(
                    f"{where} declares {len(declared)} outputs ({', '.join(declared)}) but "
                    f"returned {got}. Return a tuple with one value per output, in order.",
                    pipeline=self.plan.pipeline_name,
                    run=self.run.name,
                    step=sp.slot,
                )
            values = dict(zip(declared, returned, strict=True))
        for name, value in values.items():
            if not matches_type(value, declared[name]):
                raise StepOutputError(
                    f"{where} returned {type(value).__name__} for output {name!r}, declared as "
                    f"{type_name(declared[name])}. Return a {type_name(declared[name])} or change "
                    "the annotation.",
                    pipeline=self.plan.pipeline_name,
                    run=self.run.name,
                    step=sp.slot,
                )
        return values

    def _write_outputs(
        self, sp: StepPlan, values: dict[str, Any], uris: dict[str, str]
    ) -> tuple[NewArtifact, ...]:
        written: list[NewArtifact] = []
        for name, value in values.items():
            materializer = sp.materializers[name] or registry.find(type(value))
            if materializer is None:
                raise MaterializerError(
                    f"Output {name!r} of {self._where(sp)} is a {type_path(type(value))}, and no "
                    "materializer handles that type. Subclass runstack.materializers."
                    f"BaseMaterializer with ASSOCIATED_TYPES = ({type(value).__name__},), or use "
                    "step.with_return_materializers(...)."
                )
            uri = uris[name]
            try:
                with self.artifact_store.staged(uri) as staging:
                    materializer(Artifact(staging)).handle_return(value)
            except RunstackError as e:
                raise MaterializerError(
                    f"Cannot write output {name!r} of {self._where(sp)}: {e}"
                ) from e
            except Exception as e:
                raise MaterializerError(
                    f"{materializer.__name__} failed to write output {name!r} of "
                    f"{self._where(sp)}: {type(e).__name__}: {e}"
                ) from e
            data_type, mat_path = type_path(type(value)), type_path(materializer)
            digest = _cache.content_hash(self.artifact_store, uri, data_type, mat_path)
            written.append(NewArtifact(name, uri, data_type, mat_path, digest))
        return tuple(written)

    def _write_logs(self, sp: StepPlan, logs: _logs.StepLogs) -> str | None:
        """Store what the step printed or logged; no file when it was silent."""
        text = logs.text
        if not text:
            return None
        uri = self.artifact_store.new_uri(self.plan.pipeline_name, self.run.name, sp.slot, "_logs")
        try:
            with (
                self.artifact_store.staged(uri) as staging,
                Artifact(staging).open(_logs.LOGS_FILE, "wb") as f,
            ):
                f.write(text.encode("utf-8", "replace"))
        except OSError as e:  # losing the log must not lose the step's result
            logger.warning("Could not store the logs of %s: %s", self._where(sp), e)
            return None
        return uri

    # -- recording -----------------------------------------------------------------------

    def _record(
        self,
        sp: StepPlan,
        status: ExecutionStatus,
        start: datetime,
        inputs: dict[str, ArtifactRecord],
        cache_key: str | None,
        components: dict[str, Any] | None,
        *,
        new: tuple[NewArtifact, ...] = (),
        reused: dict[str, ArtifactRecord] | None = None,
        cached_from: int | None = None,
        error: str | None = None,
        tb: str | None = None,
        logs_uri: str | None = None,
    ) -> dict[str, ArtifactRecord]:
        result = StepResult(
            run_id=self.run.id,
            name=sp.slot,
            entrypoint_name=sp.step.NAME,
            position=sp.position,
            status=status,
            parameters=sp.parameters,
            start_time=start,
            end_time=_now(),
            cache_key=cache_key,
            cache_components=components,
            cached_from_step_id=cached_from,
            inputs={n: a.id for n, a in inputs.items()},
            new_outputs=new,
            reused_outputs=dict(reused or {}),
            output_order=tuple(sp.step.SIGNATURE.outputs),
            parent_step_names=sp.node.upstream,
            role=sp.step.ROLE,
            error=error,
            traceback=tb,
            logs_uri=logs_uri,
        )
        _, outputs = self.metadata_store.record_step(result)
        return outputs

    def _fail(
        self,
        sp: StepPlan,
        start: datetime,
        inputs: dict[str, ArtifactRecord],
        cache_key: str | None,
        components: dict[str, Any] | None,
        exc: BaseException,
        logs: _logs.StepLogs | None = None,
    ) -> None:
        tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        # A failed step never becomes a cache hit: it is recorded without its key.
        self._record(
            sp,
            ExecutionStatus.FAILED,
            start,
            inputs,
            None,
            components,
            error=f"{type(exc).__name__}: {exc}",
            tb=tb,
            logs_uri=self._write_logs(sp, logs) if logs is not None else None,
        )
        self._emit("step_failed", sp, start, f"{type(exc).__name__}: {exc}")
