"""JSON shapes of runs, steps and artifacts as the REST API returns them.

PLUG (issue 12): the run/step shapes belong beside the views in ``post_execution/_json.py``,
shared with ``runstack run show --json``; when that lands these delegate to it and only the
dashboard-specific fields (links, step counts) stay here.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from runstack.models import ExecutionStatus

if TYPE_CHECKING:
    from runstack.models import ArtifactLink, ArtifactRecord, StepRecord
    from runstack.post_execution import RunView


def iso(dt: datetime | None) -> str | None:
    return None if dt is None else dt.isoformat()


def seconds(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return round((end - start).total_seconds(), 6)


def artifact_dict(record: ArtifactRecord, name: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {} if name is None else {"name": name}
    out.update(
        artifact_id=record.id,
        data_type=record.data_type,
        materializer=record.materializer,
        content_hash=record.content_hash,
        pickle_based=record.storage_format == "pickle",
    )
    return out


def _links(step_id: int, links: list[ArtifactLink]) -> list[dict[str, Any]]:
    out = []
    for link in links:
        d = artifact_dict(link.artifact, link.name)
        d["cached"] = link.artifact.producer_step_id != step_id  # reused from an earlier step
        out.append(d)
    return out


def step_dict(
    step: StepRecord, inputs: list[ArtifactLink], outputs: list[ArtifactLink]
) -> dict[str, Any]:
    """One step as listed in a run: what the run page and ``/api/runs/{run}`` show."""
    execution = step.execution or {}
    return {
        "name": step.name,
        "entrypoint_name": step.entrypoint_name,
        "status": step.status.value,
        "cached": step.status is ExecutionStatus.CACHED,
        "start_time": iso(step.start_time),
        "end_time": iso(step.end_time),
        "duration": seconds(step.start_time, step.end_time),
        "parameters": step.parameters,
        # logs_uri is a storage location, not for browsers: logs are served by step name.
        "attempts": [
            {k: v for k, v in a.items() if k != "logs_uri"} for a in execution.get("attempts", [])
        ],
        "error": step.error,
        "parents": list(step.parent_step_names),
        "inputs": _links(step.id, inputs),
        "outputs": _links(step.id, outputs),
    }


def run_dict(run: RunView) -> dict[str, Any]:
    """A run without its steps."""
    return {
        "name": run.name,
        "pipeline": run.pipeline_name,
        "status": run.status.value,
        "start_time": iso(run.start_time),
        "end_time": iso(run.end_time),
        "duration": seconds(run.start_time, run.end_time),
        "error": run.error,
    }
