"""Lineage: which steps made an artifact, and which steps in any run used it since.

Every walk goes level by level over artifacts, with a fixed number of queries per level, so
its cost follows the depth of the pipelines, not the number of runs recorded.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from runstack.metadata_stores import SQLMetadataStore
from runstack.models import ArtifactRecord, RunRecord, StepRecord
from runstack.post_execution._loader import RunGroup

if TYPE_CHECKING:
    from runstack.artifact_stores import ArtifactStore
    from runstack.post_execution._views import RunView, StepView


def run_views(
    store: SQLMetadataStore, records: Iterable[RunRecord], artifacts: ArtifactStore | None
) -> dict[int, RunView]:
    """Views of ``records`` that load their steps (and tags) together."""
    from runstack.post_execution._views import RunView

    records = list(records)
    group = RunGroup(store, (r.id for r in records), None)
    return {r.id: RunView(store, r, group, artifacts) for r in records}


def linked_steps(
    store: SQLMetadataStore, kind: str, artifact: ArtifactRecord, artifacts: ArtifactStore | None
) -> list[tuple[str, StepView]]:
    """``(input or output name, step)`` of every step linked to ``artifact`` (see
    ``steps_linked``), each with its run; two queries."""
    from runstack.post_execution._views import StepView

    linked = store.steps_linked(kind, [artifact.id])
    runs = run_views(store, store.runs_of_linked_steps(kind, [artifact.id]), artifacts)
    return [(name, StepView(store, s, runs[s.run_id], None, artifacts)) for _, name, s in linked]


def _step_ref(step: StepRecord, run_names: dict[int, str]) -> dict[str, Any]:
    return {
        "run": run_names.get(step.run_id),
        "step": step.name,
        "step_id": step.id,
        "status": step.status.value,
    }


def _artifact_ref(a: ArtifactRecord) -> dict[str, Any]:
    return {"id": a.id, "uri": a.uri, "data_type": a.data_type}


def upstream(store: SQLMetadataStore, start: ArtifactRecord) -> dict[str, Any]:
    """``start`` with the step that produced it and, recursively, that step's inputs."""
    records: dict[int, ArtifactRecord] = {start.id: start}
    producers: dict[int, StepRecord] = {}
    output_name: dict[int, str] = {}
    inputs: dict[int, list[tuple[str, int]]] = {}
    run_names: dict[int, str] = {}
    level = [start]
    while level:
        step_ids = sorted({a.producer_step_id for a in level} - set(producers))
        if not step_ids:
            break
        for s in store.steps_by_ids(step_ids):
            producers[s.id] = s
        for sid, run in store.run_names_of_steps(step_ids).items():
            run_names[producers[sid].run_id] = run
        for link in store.outputs_of_steps(step_ids):
            if link.artifact.producer_step_id == link.step_id:
                output_name[link.artifact.id] = link.name
        level = []
        for link in store.inputs_of_steps(step_ids):
            inputs.setdefault(link.step_id, []).append((link.name, link.artifact.id))
            if link.artifact.id not in records:
                records[link.artifact.id] = link.artifact
                level.append(link.artifact)

    shown: set[int] = set()

    def node(aid: int) -> dict[str, Any]:
        a = records[aid]
        out = _artifact_ref(a) | {"output": output_name.get(aid)}
        producer = producers.get(a.producer_step_id)
        if producer is not None:
            out["producer"] = _step_ref(producer, run_names)
        if aid in shown:
            out["shown_above"] = True
            return out
        shown.add(aid)
        out["inputs"] = [
            {"input": name} | node(i) for name, i in inputs.get(a.producer_step_id, [])
        ]
        return out

    return node(start.id)


def downstream(store: SQLMetadataStore, start: ArtifactRecord) -> dict[str, Any]:
    """``start`` with every step in any run that consumed it (and, recursively, what those
    steps made), and the steps that reused it from the cache."""
    records: dict[int, ArtifactRecord] = {start.id: start}
    consumers: dict[int, list[tuple[str, StepRecord]]] = {}
    reusers: dict[int, list[StepRecord]] = {}
    outputs: dict[int, list[tuple[str, int]]] = {}
    run_names: dict[int, str] = {}
    level = [start.id]
    while level:
        for aid, name, s in store.steps_linked("input", level):
            consumers.setdefault(aid, []).append((name, s))
        for aid, _, s in store.steps_linked("output", level):
            if s.id != records[aid].producer_step_id:
                reusers.setdefault(aid, []).append(s)
        for kind in ("input", "output"):
            run_names.update((r.id, r.name) for r in store.runs_of_linked_steps(kind, level))
        nxt = []
        for link in store.outputs_of_consumers(level):
            outputs.setdefault(link.step_id, []).append((link.name, link.artifact.id))
            if link.artifact.id not in records:
                records[link.artifact.id] = link.artifact
                nxt.append(link.artifact.id)
        level = nxt

    shown: set[int] = set()

    def node(aid: int) -> dict[str, Any]:
        out = _artifact_ref(records[aid])
        if aid in shown:
            out["shown_above"] = True
            return out
        shown.add(aid)
        out["consumers"] = [
            _step_ref(s, run_names)
            | {
                "input": name,
                "outputs": [{"output": o} | node(i) for o, i in outputs.get(s.id, [])],
            }
            for name, s in consumers.get(aid, [])
        ]
        out["reused_by"] = [_step_ref(s, run_names) for s in reusers.get(aid, [])]
        return out

    return node(start.id)
