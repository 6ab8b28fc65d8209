"""What the dashboard serves, as JSON-ready dicts: one place for the API and the pages.

Runs and steps have the shapes of ``post_execution._json`` (shared with ``run show --json``),
plus what a browser needs to link and page: artifact ids, attempts, parents, step counts.
Every listing is filtered and paged in the database and each page costs a fixed number of
queries whatever the number of runs or steps: a runs page is the run rows, their total, their
steps, step counts, parameters and scalar outputs (one query each); a run is its row, its
steps with every column, their inputs and their outputs.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from typing import TYPE_CHECKING, Any, cast

from runstack.exceptions import NotFoundError, RunstackError
from runstack.metadata_stores import RunFilter
from runstack.metadata_stores import _overview as ov
from runstack.post_execution import ArtifactView, History, RunView, StepView
from runstack.post_execution._display import parent_names
from runstack.post_execution._json import artifacts_of, json_safe, run_to_dict, step_to_dict
from runstack.post_execution._peek import BUILTIN, NOT_SCALAR, SCALAR_TYPES, scalar_of

if TYPE_CHECKING:
    from runstack.artifact_stores import ArtifactStore
    from runstack.metadata_stores import SQLMetadataStore
    from runstack.models import ArtifactRecord
    from runstack.visualizers import Preview

_MISSING: Any = object()


class ArtifactIdNotFoundError(NotFoundError):
    """No recorded artifact has this id in the served store."""


def _nest(flat: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``{"step.name": v}`` -> ``{"step": {"name": v}}`` (the shape of ``run_to_dict``)."""
    out: dict[str, dict[str, Any]] = {}
    for key, value in flat.items():
        step, _, name = key.partition(".")
        out.setdefault(step, {})[name] = value
    return out


def preview_dict(p: Preview) -> dict[str, Any]:
    """A renderer's preview as JSON (statistics as numbers, not the picture)."""
    data = dataclasses.asdict(p)
    data["statistics"] = None if p.statistics is None else p.statistics.to_dict()
    data["columns"] = [{"name": n, "type": t} for n, t in p.columns]
    return cast(dict[str, Any], json_safe(data))


class Source:
    """The served history: a read-only metadata store and the stack's artifact store."""

    def __init__(self, store: SQLMetadataStore, artifacts: ArtifactStore, stack: str) -> None:
        self.store = store
        self.artifacts = artifacts
        self.stack = stack
        self.history = History(store, artifacts)

    # -- pipelines and runs ----------------------------------------------------------------

    def pipelines(self) -> list[dict[str, Any]]:
        out = []
        for p in ov.pipeline_summaries(self.store):
            # Views derive a crashed run's status (failed, ended when last seen) on read.
            recent = [RunView(self.store, r, None, self.artifacts) for r in p.recent]
            latest = recent[-1] if recent else None
            out.append(
                {
                    "name": p.name,
                    "created_at": p.created_at,
                    "run_count": p.run_count,
                    "latest_run": None
                    if latest is None
                    else {
                        "name": latest.name,
                        "status": latest.status,
                        "start_time": latest.start_time,
                    },
                    "recent": [
                        {
                            "name": r.name,
                            "status": r.status,
                            "duration": None
                            if r.end_time is None
                            else (r.end_time - r.start_time).total_seconds(),
                        }
                        for r in recent
                    ],
                }
            )
        return cast(list[dict[str, Any]], json_safe(out))

    def runs(
        self,
        pipeline: str,
        *,
        status: str | None = None,
        name_prefix: str | None = None,
        limit: int = 50,
        offset: int = 0,
        newest_first: bool = True,
    ) -> dict[str, Any]:
        view = self.history.get_pipeline(pipeline)
        where = RunFilter(
            status=status,
            name_prefix=name_prefix,
            limit=limit,
            offset=offset,
            newest_first=newest_first,
        )
        runs = view.get_runs(where)
        total = self.store.count_runs(view.id, where)
        metrics = self._metrics([r.id for r in runs])
        rows, params = [], {}
        for r in runs:
            # The first run's steps load those of the whole page, in one query.
            row = run_to_dict(r, steps=False)
            counts = Counter(s.status.value for s in r.steps)
            row["steps"] = {
                "total": len(r.steps),
                **{k: counts.get(k, 0) for k in ("completed", "cached", "failed", "running")},
            }
            params[r.id] = _flat_parameters(r)
            row["parameters"] = _nest(json_safe(params[r.id]))
            row["metrics"] = _nest(json_safe(metrics.get(r.id, {})))
            rows.append(row)
        return {
            "pipeline": view.name,
            "total": total,
            "limit": limit,
            "offset": offset,
            "newest_first": newest_first,
            "parameter_columns": _columns(params.values()),
            "metric_columns": _columns(metrics.get(r.id, {}) for r in runs),
            "runs": rows,
        }

    def _metrics(self, run_ids: list[int]) -> dict[int, dict[str, Any]]:
        """Run id -> {"<step>.<output>": value} of the runs' scalar outputs (one query)."""
        out: dict[int, dict[str, Any]] = {}
        if not run_ids:
            return out
        found = ov.outputs_of_runs(self.store, run_ids, SCALAR_TYPES, BUILTIN)
        for run_id, step, name, record in found:
            value = scalar_of(self._artifact_view(record, name))
            if value is not NOT_SCALAR:
                out.setdefault(run_id, {})[f"{step}.{name}"] = value
        return out

    def _artifact_view(self, record: ArtifactRecord, name: str) -> ArtifactView:
        return ArtifactView(self.store, record, name, record.producer_step_id, self.artifacts)

    def run_view(self, name: str) -> RunView:
        """The run with its steps, inputs and outputs loaded in three queries."""
        view = self.history.get_run(name)
        records = ov.steps_of_run(self.store, view.id)
        steps = [StepView(self.store, r, view, None, self.artifacts) for r in records]
        # Complete records, and inputs and outputs loaded for all steps at once, handed to
        # the views: neither the shapes nor the pictures then query per step.
        ins, outs = artifacts_of(steps, "input"), artifacts_of(steps, "output")
        for s in steps:
            s._inputs, s._outputs = ins[s.id], outs[s.id]
        view._steps = steps
        return view

    def run(self, name: str) -> dict[str, Any]:
        return self.run_dict(self.run_view(name))

    def run_dict(self, view: RunView) -> dict[str, Any]:
        """A run loaded by :meth:`run_view` as JSON, with its steps."""
        out = run_to_dict(view)
        out["stack"] = self.stack
        for step, data in zip(view.steps, out["steps"], strict=True):
            _add_links(step, data)
        return out

    def step_view(self, run: str, step: str) -> StepView:
        """The step of a run loaded by :meth:`run_view`: its logs and outputs need no lookup."""
        return self.run_view(run).get_step(step)

    def step(self, run: str, step: str) -> dict[str, Any]:
        return self.step_dict(self.step_view(run, step))

    def step_dict(self, view: StepView) -> dict[str, Any]:
        """A step loaded by :meth:`step_view` as JSON, with its cache decision."""
        out = step_to_dict(view, detail=True)
        _add_links(view, out)
        out["run"] = view.run.name
        out["options"] = json_safe(view.options)
        try:
            why = view.cache_explanation
            out["cache"] = {
                "cached": why.cached,
                "explanation": str(why),
                "reasons": list(why.reasons),
                "source_run": why.source_run,
                "compared_with_run": why.compared_with_run,
            }
        except RunstackError as e:
            out["cache"] = {"cached": view.is_cached, "explanation": str(e), "reasons": []}
        return out

    def logs(self, run: str, step: str) -> str:
        return self.history.get_run(run).get_step(step).logs

    def output(self, run: str, step: str, output: str) -> ArtifactView:
        return self.history.get_run(run).get_step(step).outputs[output]

    def preview(self, run: str, step: str, output: str) -> dict[str, Any]:
        from runstack.visualizers import preview

        return preview_dict(preview(self.output(run, step, output)))

    def artifact_view(self, artifact_id: int) -> ArtifactView:
        record = ov.get_artifact(self.store, artifact_id)
        if record is None:
            raise ArtifactIdNotFoundError(
                f"No artifact #{artifact_id} is recorded in this stack's metadata store. "
                "Artifacts are listed with their steps: open a run to find them."
            )
        links = self.store.outputs_of_steps([record.producer_step_id])
        name = next((x.name for x in links if x.artifact.id == artifact_id), f"#{artifact_id}")
        return self._artifact_view(record, name)

    def artifact(self, artifact_id: int, *, with_preview: bool = False) -> dict[str, Any]:
        view = self.artifact_view(artifact_id)
        producer = view.producer_step
        out: dict[str, Any] = {
            "artifact_id": view.id,
            "data_type": view.data_type,
            "materializer": view.materializer,
            "content_hash": view.content_hash,
            "pickle_based": view.storage_format == "pickle",
            "producer": {"run": producer.run.name, "step": producer.name, "output": view.name},
            "consumers": _consumers(view),
        }
        if with_preview:
            from runstack.visualizers import preview

            out["preview"] = preview_dict(preview(view))
        return out

    def compare(self, names: list[str]) -> dict[str, Any]:
        """Runs side by side: parameters and scalar outputs, with which of them differ."""
        # Oldest first: the order a metric over runs is drawn in.
        views = sorted((self.history.get_run(n) for n in names), key=lambda v: v.start_time)
        ids = [v.id for v in views]
        params = {v.id: _flat_parameters(v) for v in views}
        metrics = self._metrics(ids)

        def table(values: dict[int, dict[str, Any]]) -> list[dict[str, Any]]:
            rows = []
            for key in _columns(values.get(i, {}) for i in ids):
                cells = [values.get(i, {}).get(key, _MISSING) for i in ids]
                rows.append(
                    {
                        "key": key,
                        "values": json_safe([None if c is _MISSING else c for c in cells]),
                        "differs": len({repr(c) for c in cells}) > 1,
                    }
                )
            return rows

        return {
            "runs": [run_to_dict(v, steps=False) for v in views],
            "parameters": table(params),
            "metrics": table(metrics),
        }

    def diff(self, a: str, b: str) -> dict[str, Any]:
        result: dict[str, Any] = self.diff_result(a, b).to_dict()
        return result

    def diff_result(self, a: str, b: str) -> Any:
        return self.history.get_run(a).diff(self.history.get_run(b))


def _add_links(step: StepView, data: dict[str, Any]) -> None:
    """What a browser needs beyond the shared shape: artifact ids to link, attempts, parents."""
    for kind, views in (("outputs", step.outputs), ("inputs", step.inputs)):
        for name, art in views.items():
            data[kind][name]["artifact_id"] = art.id
            data[kind][name]["pickle_based"] = art.storage_format == "pickle"
    data["parents"] = list(parent_names(step))
    data["attempts"] = json_safe(
        [{k: v for k, v in a.items() if k != "logs_uri"} for a in step.attempts]
    )


def _consumers(view: ArtifactView) -> list[dict[str, Any]]:
    """The steps, in any run, that took the artifact as an input (cache hits included)."""
    out = []
    for step in view.consumers:
        names = [n for n, a in step.inputs.items() if a.id == view.id]
        out.append({"run": step.run.name, "step": step.name, "input": names[0] if names else None})
    return out


def _flat_parameters(run: RunView) -> dict[str, Any]:
    """``{"<step>.<parameter>": value}`` of the run's steps (the columns of runs tables)."""
    return {f"{s.name}.{k}": v for s in run.steps for k, v in s.parameters.items()}


def _columns(dicts: Any) -> list[str]:
    """Keys of all the dicts, in first-seen order."""
    seen: dict[str, None] = {}
    for d in dicts:
        for k in d:
            seen.setdefault(k, None)
    return list(seen)
