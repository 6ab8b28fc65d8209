"""JSON shapes of runs and steps, shared by ``run show --json``, the REST API and reports.

Every value is JSON-ready (times as ISO 8601 strings, statuses as strings, NaN and infinities
as the strings ``"nan"``, ``"inf"``, ``"-inf"``), so callers need no encoder of their own.
``metrics`` are a step's scalar outputs: ints, floats, bools and short strings stored by the
built-in (JSON) materializer; no other artifact is opened to find them.
"""

from __future__ import annotations

import enum
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from runstack.post_execution._peek import NOT_SCALAR, scalar_of

if TYPE_CHECKING:
    from runstack.models import ArtifactLink
    from runstack.post_execution._views import RunView, StepArtifacts, StepView

_CHUNK = 500  # step ids per query: databases cap the parameters of one statement


def json_safe(value: Any) -> Any:
    """``value`` with datetimes, enums, tuples, sets, bytes and non-finite floats turned into
    what strict JSON (``allow_nan=False``) accepts."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return json_safe(value.value)
    if isinstance(value, Mapping):
        return {k if isinstance(k, str) else str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (set, frozenset)):
        return sorted((json_safe(v) for v in value), key=repr)
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, (bytes, bytearray)):
        return f"<{len(value)} bytes>"
    return str(value)


def artifacts_of(steps: Sequence[StepView], kind: str) -> dict[int, StepArtifacts]:
    """The ``"output"``s or ``"input"``s of every step by step id, in one query per metadata
    store, where ``step.outputs`` of each would take one query per step."""
    from runstack.post_execution._views import StepArtifacts

    by_store: dict[int, list[StepView]] = defaultdict(list)
    found: dict[int, StepArtifacts] = {}
    for s in steps:
        loaded = s._outputs if kind == "output" else s._inputs
        if loaded is not None:  # the view has them already
            found[s.id] = loaded
        else:
            by_store[id(s._store)].append(s)
    for group in by_store.values():
        store = group[0]._store
        fetch = store.outputs_of_steps if kind == "output" else store.inputs_of_steps
        links: dict[int, list[ArtifactLink]] = defaultdict(list)
        ids = [s.id for s in group]
        for i in range(0, len(ids), _CHUNK):
            for link in fetch(ids[i : i + _CHUNK]):
                links[link.step_id].append(link)
        for s in group:
            found[s.id] = StepArtifacts(store, s.id, s.name, kind, links[s.id], s._artifacts)
    return found


def metrics_of(step: StepView, outputs: StepArtifacts | None = None) -> dict[str, Any]:
    """The step's scalar outputs by name (see the module docstring); ``outputs`` saves the
    query for ``step.outputs`` when they were loaded already."""
    out = {}
    for name, artifact in (step.outputs if outputs is None else outputs).items():
        value = scalar_of(artifact)
        if value is not NOT_SCALAR:
            out[name] = value
    return out


def _duration(start: datetime | None, end: datetime | None) -> float | None:
    return None if start is None or end is None else (end - start).total_seconds()


def step_to_dict(
    step: StepView,
    *,
    detail: bool = False,
    inputs: StepArtifacts | None = None,
    outputs: StepArtifacts | None = None,
) -> dict[str, Any]:
    """A step as JSON: status, timing, parameters, metrics and its inputs and outputs.

    ``detail`` adds what costs extra queries or is long: each input's producing step, the
    cache key's components and the traceback. ``inputs`` / ``outputs``: already loaded ones
    (see :func:`artifacts_of`).
    """
    inputs = step.inputs if inputs is None else inputs
    outputs = step.outputs if outputs is None else outputs
    data: dict[str, Any] = {
        "name": step.name,
        "entrypoint": step.entrypoint_name,
        "status": step.status.value,
        "cached": step.is_cached,
        "start_time": step.start_time,
        "end_time": step.end_time,
        "duration": step.duration,
        "parameters": step.parameters,
        "metrics": metrics_of(step, outputs),
        "cache_key": step.cache_key,
        "inputs": {
            name: {"data_type": a.data_type, "uri": a.uri, "content_hash": a.content_hash}
            for name, a in inputs.items()
        },
        "outputs": {
            name: {
                "data_type": a.data_type,
                "materializer": a.materializer,
                "uri": a.uri,
                "content_hash": a.content_hash,
                "reused": a.is_cached,
            }
            for name, a in outputs.items()
        },
        "error": step.error,
        "options": step.options,
        "attempts": step.attempts,
    }
    if detail:
        for name, a in inputs.items():
            data["inputs"][name]["producer_step"] = a.producer_step.name
        data["cache_components"] = step.cache_components
        data["traceback"] = step.traceback
    return json_safe(data)


def run_to_dict(run: RunView, *, steps: bool = True) -> dict[str, Any]:
    """A run as JSON; ``parameters`` and ``metrics`` are keyed by step, then by name.

    Without ``steps`` only the run's own fields and its step counts are given (listings).
    """
    views = run.steps
    data: dict[str, Any] = {
        "name": run.name,
        "pipeline": run.pipeline_name,
        "status": run.status.value,
        "start_time": run.start_time,
        "end_time": run.end_time,
        "duration": _duration(run.start_time, run.end_time),
        "error": run.error,
        "tags": run.tags,
        "note": run.note,
        "step_count": len(views),
        "cached_steps": sum(1 for s in views if s.is_cached),
    }
    if not steps:
        return json_safe(data)
    data = json_safe(data)
    # Step dicts are JSON-safe already: a second pass over 50 steps cost as much as the shapes.
    ins, outs = artifacts_of(views, "input"), artifacts_of(views, "output")
    step_dicts = [step_to_dict(s, inputs=ins[s.id], outputs=outs[s.id]) for s in views]
    data["parameters"] = {s["name"]: s["parameters"] for s in step_dicts if s["parameters"]}
    data["metrics"] = {s["name"]: s["metrics"] for s in step_dicts if s["metrics"]}
    data["steps"] = step_dicts
    return data
