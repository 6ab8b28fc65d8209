"""What the dashboard serves, as plain dicts: one place for the API and the pages to read from.

Every listing is filtered and paged in the database, and every page costs a fixed number of
queries whatever the number of runs or steps: a runs page is the run rows, their total, step
counts, parameters and scalar outputs (one query each); a run is its row, its steps, their
inputs and their outputs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from runstack.dashboard import _preview
from runstack.dashboard._shapes import artifact_dict, iso, run_dict, seconds, step_dict
from runstack.exceptions import NotFoundError, RunstackError
from runstack.metadata_stores import _overview as ov
from runstack.post_execution import History, RunView

if TYPE_CHECKING:
    from runstack.artifact_stores import ArtifactStore
    from runstack.metadata_stores import SQLMetadataStore

MAX_METRIC_TEXT = 80  # longer strings are not "metrics"
MAX_METRIC_BYTES = 1024


_MISSING: Any = object()


class ArtifactIdNotFoundError(NotFoundError):
    """No recorded artifact has this id in the served store."""


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
            latest = p.recent[-1] if p.recent else None
            out.append(
                {
                    "name": p.name,
                    "created_at": iso(p.created_at),
                    "run_count": p.run_count,
                    "latest_run": None
                    if latest is None
                    else {
                        "name": latest.name,
                        "status": latest.status.value,
                        "start_time": iso(latest.start_time),
                    },
                    "recent": [
                        {
                            "name": r.name,
                            "status": r.status.value,
                            "duration": seconds(r.start_time, r.end_time),
                        }
                        for r in p.recent
                    ],
                }
            )
        return out

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
        filters: dict[str, Any] = {"status": status, "name_prefix": name_prefix}
        records = self.store.list_runs(
            view.id, limit=limit, offset=offset, newest_first=newest_first, **filters
        )
        total = self.store.count_runs(view.id, **filters)
        ids = [r.id for r in records]
        counts = ov.step_counts(self.store, ids) if ids else {}
        params = ov.parameters_of_runs(self.store, ids) if ids else {}
        metrics = self._metrics(ids)
        rows = []
        for r in records:
            row = run_dict(RunView(self.store, r, None, self.artifacts))
            c = counts.get(r.id, {})
            row["steps"] = {
                "total": sum(c.values()),
                "completed": c.get("completed", 0),
                "cached": c.get("cached", 0),
                "failed": c.get("failed", 0),
                "running": c.get("running", 0),
            }
            row["parameters"] = params.get(r.id, {})
            row["metrics"] = metrics.get(r.id, {})
            rows.append(row)
        return {
            "pipeline": view.name,
            "total": total,
            "limit": limit,
            "offset": offset,
            "newest_first": newest_first,
            "parameter_columns": _columns(row["parameters"] for row in rows),
            "metric_columns": _columns(row["metrics"] for row in rows),
            "runs": rows,
        }

    def _metrics(self, run_ids: list[int]) -> dict[int, dict[str, Any]]:
        """Run id -> {"<step>.<output>": value} of the runs' short scalar outputs."""
        out: dict[int, dict[str, Any]] = {}
        if not run_ids:
            return out
        for run_id, step, name, record in ov.scalar_outputs_of_runs(self.store, run_ids):
            try:
                value = _preview.scalar(record, self.artifacts, MAX_METRIC_BYTES)
            except (RunstackError, OSError, ValueError):
                continue  # a missing or unreadable file: the run page shows no value for it
            if isinstance(value, str) and len(value) > MAX_METRIC_TEXT:
                continue
            out.setdefault(run_id, {})[f"{step}.{name}"] = value
        return out

    def _run(self, name: str) -> RunView:
        return self.history.get_run(name)

    def run(self, name: str) -> dict[str, Any]:
        view = self._run(name)
        steps = ov.steps_of_run(self.store, view.id)
        ids = [s.id for s in steps]
        outs: dict[int, list[Any]] = {i: [] for i in ids}
        ins: dict[int, list[Any]] = {i: [] for i in ids}
        if ids:
            for link in self.store.outputs_of_steps(ids):
                outs[link.step_id].append(link)
            for link in self.store.inputs_of_steps(ids):
                ins[link.step_id].append(link)
        out = run_dict(view)
        out["stack"] = self.stack
        out["steps"] = [step_dict(s, ins[s.id], outs[s.id]) for s in steps]
        return out

    def step(self, run: str, step: str) -> dict[str, Any]:
        view = self._run(run).get_step(step)
        record = view._full()
        out = step_dict(
            record,
            self.store.inputs_of_steps([record.id]),
            self.store.outputs_of_steps([record.id]),
        )
        out["run"] = run
        out["traceback"] = record.traceback
        out["options"] = view.options
        out["cache_key"] = record.cache_key
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
        return self._run(run).get_step(step).logs

    def preview(self, run: str, step: str, output: str) -> dict[str, Any]:
        art = self._run(run).get_step(step).outputs[output]
        return _preview.preview(art._record, self.artifacts)

    def artifact(self, artifact_id: int, *, with_preview: bool = False) -> dict[str, Any]:
        record = ov.get_artifact(self.store, artifact_id)
        if record is None:
            raise ArtifactIdNotFoundError(
                f"No artifact #{artifact_id} is recorded in this stack's metadata store. "
                "Artifacts are listed with their steps: open a run to find them."
            )
        producer = self.store.get_step_by_id(record.producer_step_id)
        run = self.store.run_names_of_steps([record.producer_step_id])
        out = artifact_dict(record)
        out["producer"] = (
            None
            if producer is None
            else {
                "run": run.get(producer.id),
                "step": producer.name,
                "output": next(
                    (
                        link.name
                        for link in self.store.outputs_of_steps([producer.id])
                        if link.artifact.id == record.id
                    ),
                    None,
                ),
            }
        )
        # PLUG (issue 14): consumers in later runs come with lineage (artifact.consumers).
        out["consumers"] = None
        if with_preview:
            out["preview"] = _preview.preview(record, self.artifacts)
        return out

    def compare(self, names: list[str]) -> dict[str, Any]:
        """Runs side by side: parameters and scalar outputs, with which of them differ."""
        views = [self._run(n) for n in names]
        ids = [v.id for v in views]
        params = ov.parameters_of_runs(self.store, ids)
        metrics = self._metrics(ids)

        def table(values: dict[int, dict[str, Any]]) -> list[dict[str, Any]]:
            keys = _columns(values.get(i, {}) for i in ids)
            rows = []
            for k in keys:
                cells = [values.get(i, {}).get(k, _MISSING) for i in ids]
                shown = [None if c is _MISSING else c for c in cells]
                rows.append(
                    {"key": k, "values": shown, "differs": len({repr(c) for c in cells}) > 1}
                )
            return rows

        return {
            "runs": [run_dict(v) for v in views],
            "parameters": table(params),
            "metrics": table(metrics),
        }

    def diff(self, a: str, b: str) -> dict[str, Any]:
        run_a, run_b = self._run(a), self._run(b)
        # PLUG (issue 12): the run diff engine; RunView.diff(...) -> result with .to_dict().
        diff = getattr(run_a, "diff", None)
        if diff is None:
            raise NotImplementedError("The run diff arrives with issue 12.")
        result: dict[str, Any] = diff(run_b).to_dict()
        return result


def _columns(dicts: Any) -> list[str]:
    """Keys of all the dicts, in first-seen order."""
    seen: dict[str, None] = {}
    for d in dicts:
        for k in d:
            seen.setdefault(k, None)
    return list(seen)
