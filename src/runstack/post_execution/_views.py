"""Read-only views over recorded history: pipelines -> runs -> steps -> artifacts."""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, overload

from runstack.exceptions import (
    AmbiguousOutputError,
    ArtifactNotFoundError,
    MaterializerError,
    OutputNotFoundError,
    RunNotFoundError,
    StepNotFoundError,
    StoreError,
    did_you_mean,
)
from runstack.materializers import BaseMaterializer
from runstack.materializers._read import (
    check_materializer,
    load_data_type,
    load_materializer,
    read_artifact,
)
from runstack.metadata_stores import SQLMetadataStore
from runstack.models import (
    ArtifactLink,
    ArtifactRecord,
    ExecutionStatus,
    PipelineRecord,
    RunRecord,
    StepRecord,
)
from runstack.post_execution._display import html_of
from runstack.post_execution._loader import RunGroup, StepGroup

if TYPE_CHECKING:
    from runstack.artifact_stores import ArtifactStore
    from runstack.post_execution._diff import RunDiff
    from runstack.post_execution._explain import CacheExplanation


def artifact_store_of(artifacts: ArtifactStore | None) -> ArtifactStore:
    """The artifact store views read through; views made without one cannot read."""
    if artifacts is None:
        raise StoreError(
            "These views were made without an artifact store, so they cannot read artifacts "
            "or logs. Browse through Repository() or a stack's `history`, which know it."
        )
    return artifacts


class ArtifactView:
    """One stored artifact; ``read()`` loads its value."""

    __slots__ = ("_artifacts", "_consumer_step_id", "_record", "_store", "name")

    def __init__(
        self,
        store: SQLMetadataStore,
        record: ArtifactRecord,
        name: str,
        consumer_step_id: int,
        artifacts: ArtifactStore | None = None,
    ) -> None:
        self._store = store
        self._artifacts = artifacts
        self._record = record
        self.name = name
        self._consumer_step_id = consumer_step_id

    @property
    def id(self) -> int:
        return self._record.id

    @property
    def uri(self) -> str:
        return self._record.uri

    @property
    def data_type(self) -> str:
        """Dotted path of the type of the value that was written."""
        return self._record.data_type

    @property
    def materializer(self) -> str:
        """Dotted path of the materializer class that wrote the artifact."""
        return self._record.materializer

    @property
    def content_hash(self) -> str | None:
        return self._record.content_hash

    @property
    def storage_format(self) -> str | None:
        """``"pickle"`` when reading the artifact runs code from its files, else None."""
        return self._record.storage_format

    @property
    def is_cached(self) -> bool:
        """True when this step reused the artifact from an earlier execution."""
        return self._record.producer_step_id != self._consumer_step_id

    @property
    def producer_step(self) -> StepView:
        """The step execution that wrote the artifact (for a cached one, the earlier step)."""
        record = self._store.get_step_by_id(self._record.producer_step_id)
        assert record is not None  # foreign key guarantees it
        return StepView(self._store, record, None, artifacts=self._artifacts)

    def read(
        self,
        output_data_type: type | None = None,
        materializer: type[BaseMaterializer] | None = None,
        *,
        materializer_class: type[BaseMaterializer] | None = None,
    ) -> Any:
        """Load the value; with the materializer that wrote it unless another is given.

        The recorded materializer and type are resolved without running code they name (see
        ``runstack.materializers._read``); a pickle-based artifact is read only if it was
        recorded as one when written, with a warning logged.
        """
        chosen = materializer or materializer_class
        if chosen is not None:
            check_materializer(chosen, "read(materializer=...)")
        try:
            mat = chosen or load_materializer(self._record.materializer)
            if output_data_type is None:
                output_data_type = load_data_type(self._record.data_type)
            artifacts = artifact_store_of(self._artifacts)
            artifacts.check(self._record.uri, f"Artifact #{self._record.id}")
            return read_artifact(self._record, mat, output_data_type, artifacts.fs)
        except (ArtifactNotFoundError, MaterializerError) as e:
            producer = self._store.get_step_by_id(self._record.producer_step_id)
            run = self._store.run_names_of_steps([self._record.producer_step_id])
            where = (
                f"output {self.name!r} of step {producer.name!r} in run {run.get(producer.id)!r}"
                if producer is not None
                else f"artifact {self.name!r}"
            )
            raise type(e)(f"Cannot read {where}: {e}") from e

    def __repr__(self) -> str:
        return f"ArtifactView(name={self.name!r}, data_type={self.data_type!r}, uri={self.uri!r})"

    def _repr_html_(self) -> str:
        """Notebook display, drawn by ``runstack.visualizers`` (never loads an artifact)."""
        return html_of(self)


class StepArtifacts(Mapping[str, ArtifactView]):
    """A step's inputs or outputs in declared order, by name (``["x"]``) or position (``[0]``).

    Views are made on access: a history scan usually reads one output of each step.
    """

    def __init__(
        self,
        store: SQLMetadataStore,
        step_id: int,
        step_name: str,
        kind: str,
        links: list[ArtifactLink],
        artifacts: ArtifactStore | None = None,
    ) -> None:
        self._store = store
        self._artifacts = artifacts
        self._step_id = step_id
        self._step = step_name
        self._kind = kind
        self._links = {link.name: link for link in links}
        self._views: dict[str, ArtifactView] = {}

    def _view(self, name: str) -> ArtifactView:
        view = self._views.get(name)
        if view is None:
            link = self._links[name]
            view = self._views[name] = ArtifactView(
                self._store, link.artifact, link.name, self._step_id, self._artifacts
            )
        return view

    @overload
    def __getitem__(self, key: str) -> ArtifactView: ...
    @overload
    def __getitem__(self, key: int) -> ArtifactView: ...
    def __getitem__(self, key: str | int) -> ArtifactView:
        if isinstance(key, int):
            names = list(self._links)
            try:
                return self._view(names[key])
            except IndexError:
                raise OutputNotFoundError(
                    f"Step {self._step!r} has {len(names)} {self._kind}(s); index {key} is out "
                    "of range."
                ) from None
        if key not in self._links:
            raise OutputNotFoundError(
                f"Step {self._step!r} has no {self._kind} {key!r}. "
                + did_you_mean(key, list(self._links), f"{self._kind}s")
            )
        return self._view(key)

    def __iter__(self) -> Iterator[str]:
        return iter(self._links)

    def __len__(self) -> int:
        return len(self._links)

    def __repr__(self) -> str:
        return f"<{self._kind}s of {self._step}: {list(self._links)}>"


class StepView:
    """One step execution within a run."""

    # Slots: a history scan creates one per run, and instance dicts double the allocations.
    __slots__ = ("_artifacts", "_group", "_inputs", "_outputs", "_record", "_run", "_store")

    def __init__(
        self,
        store: SQLMetadataStore,
        record: StepRecord,
        run: RunView | None,
        group: StepGroup | None = None,
        artifacts: ArtifactStore | None = None,
    ) -> None:
        self._store = store
        self._artifacts = artifacts
        self._record = record
        self._run = run
        self._group = group
        self._outputs: StepArtifacts | None = None
        self._inputs: StepArtifacts | None = None

    id = property(lambda self: self._record.id)
    name = property(lambda self: self._record.name, doc="The step's slot in the pipeline.")
    entrypoint_name = property(
        lambda self: self._record.entrypoint_name, doc="The step function's or class's name."
    )
    status = property(lambda self: self._record.status)
    start_time = property(lambda self: self._record.start_time)
    end_time = property(lambda self: self._record.end_time)
    error = property(lambda self: self._record.error)
    traceback = property(lambda self: self._full().traceback)

    @property
    def attempts(self) -> list[dict[str, Any]]:
        """Each attempt at this step (retries): ``attempt``, ``start_time``, ``end_time``,
        ``error`` and ``logs_uri``; the last one counts. Empty for cached steps."""
        return list((self._full().execution or {}).get("attempts", []))

    @property
    def options(self) -> dict[str, Any]:
        """The execution options the step ran with: retries, timeout, resources..."""
        return dict((self._full().execution or {}).get("options", {}))

    cache_key = property(lambda self: self._record.cache_key)
    role = property(
        lambda self: self._record.role,
        doc='The standard interface the step implements ("trainer", "evaluator", ...), or None.',
    )

    @property
    def parameters(self) -> dict[str, Any]:
        # Records share decoded parameter values across runs: hand out a copy to mutate.
        return copy.deepcopy(self._record.parameters)

    def _full(self) -> StepRecord:
        """The record with every column (listings leave out the big, rarely read ones)."""
        if not self._record.complete:
            record = self._store.get_step_by_id(self._record.id)
            assert record is not None
            self._record = record
        return self._record

    @property
    def is_cached(self) -> bool:
        return self._record.status is ExecutionStatus.CACHED

    @property
    def duration(self) -> float | None:
        if self._record.end_time is None:
            return None
        return (self._record.end_time - self._record.start_time).total_seconds()

    @property
    def run(self) -> RunView:
        if self._run is None:
            record = self._store.get_run_by_id(self._record.run_id)
            assert record is not None
            self._run = RunView(self._store, record, None, artifacts=self._artifacts)
        return self._run

    def _links(self, kind: str) -> list[ArtifactLink]:
        rec = self._record
        if kind == "output":
            if self._group is not None:
                return self._group.outputs_of(rec.name, rec.id)
            return self._store.outputs_of_steps([rec.id])
        if self._group is not None:
            return self._group.inputs_of(rec.name, rec.id)
        return self._store.inputs_of_steps([rec.id])

    @property
    def outputs(self) -> StepArtifacts:
        """Outputs in the order of ``Output(...)``; index by name or position."""
        if self._outputs is None:
            self._outputs = StepArtifacts(
                self._store, self.id, self.name, "output", self._links("output"), self._artifacts
            )
        return self._outputs

    @property
    def inputs(self) -> StepArtifacts:
        if self._inputs is None:
            self._inputs = StepArtifacts(
                self._store, self.id, self.name, "input", self._links("input"), self._artifacts
            )
        return self._inputs

    @property
    def output(self) -> ArtifactView:
        """The only output; an error if the step has none or several."""
        return _only(self.outputs, self.name, "output")

    @property
    def input(self) -> ArtifactView:
        """The only input; an error if the step has none or several."""
        return _only(self.inputs, self.name, "input")

    @property
    def parent_steps(self) -> list[StepView]:
        """Steps of the same run whose outputs this step consumed."""
        return [self.run.get_step(n) for n in self._record.parent_step_names]

    @property
    def cache_explanation(self) -> CacheExplanation:
        """Why this step was reused from the cache, or why it ran (``str()`` for sentences)."""
        from runstack.post_execution._explain import explain

        return explain(self._store, self._full(), self.run.name)

    @property
    def cache_components(self) -> dict[str, Any]:
        """What the step's cache key was computed from (see docs/caching.md)."""
        comps = dict(self._full().cache_components or {})
        comps.pop("decision", None)
        return comps

    @property
    def logs(self) -> str:
        """What the step printed to stdout/stderr and logged while it ran ("" if nothing)."""
        from runstack.post_execution._step_logs import read_logs

        return read_logs(self._record.logs_uri, self.name, self.run.name, self._artifacts)

    def __repr__(self) -> str:
        return (
            f"StepView(name={self.name!r}, entrypoint={self.entrypoint_name!r}, "
            f"status={self.status.value!r})"
        )

    def _repr_html_(self) -> str:
        """Notebook display, drawn by ``runstack.visualizers`` (never loads an artifact)."""
        return html_of(self)


def _only(items: StepArtifacts, step: str, kind: str) -> ArtifactView:
    if len(items) == 1:
        return items[0]
    if not items:
        raise OutputNotFoundError(f"Step {step!r} has no {kind}s.")
    raise AmbiguousOutputError(
        f"Step {step!r} has {len(items)} {kind}s ({', '.join(items)}); use "
        f"step.{kind}s['<name>'] to pick one."
    )


class RunView:
    """One run of a pipeline."""

    __slots__ = ("_artifacts", "_group", "_record", "_steps", "_store")

    def __init__(
        self,
        store: SQLMetadataStore,
        record: RunRecord,
        group: RunGroup | None,
        artifacts: ArtifactStore | None = None,
    ) -> None:
        self._store = store
        self._artifacts = artifacts
        self._record = record
        self._group = group
        self._steps: list[StepView] | None = None

    id = property(lambda self: self._record.id)
    name = property(lambda self: self._record.name)
    pipeline_name = property(lambda self: self._record.pipeline_name)
    start_time = property(lambda self: self._record.start_time)

    def _reconciled(self) -> RunRecord:
        """The record as it stands; a run left "running" by a dead process reads as failed,
        ending when last seen alive. Derived only: views never write (read-only credentials
        browse), ``launch`` and ``runstack run reconcile`` record it."""
        if self._record.status is ExecutionStatus.RUNNING:
            from runstack.post_execution._crashes import as_seen

            self._record = as_seen(self._record)
        return self._record

    status = property(lambda self: self._reconciled().status)
    end_time = property(lambda self: self._reconciled().end_time)
    error = property(lambda self: self._reconciled().error)

    @property
    def steps(self) -> list[StepView]:
        """Steps in execution order."""
        if self._steps is None:
            if self._group is None:
                self._group = RunGroup(self._store, [self.id], None)
            records = self._group.steps_of(self.id)
            sg = self._group.step_group
            self._steps = [StepView(self._store, r, self, sg, self._artifacts) for r in records]
        return self._steps

    def get_step_names(self) -> list[str]:
        return [s.name for s in self.steps]

    def get_step(self, name: str | None = None, *, step: str | None = None) -> StepView:
        """A step by its pipeline slot name, or by its entrypoint name when that is unambiguous."""
        name = name if name is not None else step
        if name is None:
            raise TypeError("get_step() needs the step's name, e.g. run.get_step('trainer').")
        if self._steps is None and self._group is not None:
            # Asking each run of a listing for one step loads that step for all of them only.
            found = self._group.steps_named(self.id, name)
            if found is not None:
                records, group = found
                slot = [r for r in records if r.name == name]
                if slot or len(records) == 1:
                    return StepView(self._store, (slot or records)[0], self, group, self._artifacts)
        steps = self.steps
        for s in steps:
            if s.name == name:
                return s
        by_entry = [s for s in steps if s.entrypoint_name == name]
        if len(by_entry) == 1:
            return by_entry[0]
        if len(by_entry) > 1:
            raise StepNotFoundError(
                f"Run {self.name!r} has {len(by_entry)} steps running {name!r} "
                f"(slots {[s.name for s in by_entry]}); ask for one by its slot name."
            )
        raise StepNotFoundError(
            f"Run {self.name!r} has no step {name!r}. "
            + did_you_mean(name, [s.name for s in steps], "steps")
        )

    def diff(self, other: RunView, *, read_limit: int | None = None) -> RunDiff:
        """What differs from this run (before) to ``other`` (after): steps, cache-key
        components, outputs and, for outputs whose content differs, the data (see
        docs/compare.md). ``read_limit`` caps the bytes read from any one artifact."""
        from runstack.post_execution._diff import diff_runs
        from runstack.post_execution._peek import READ_LIMIT

        return diff_runs(self, other, read_limit=READ_LIMIT if read_limit is None else read_limit)

    def __repr__(self) -> str:
        return f"RunView(name={self.name!r}, status={self.status.value!r})"

    def _repr_html_(self) -> str:
        """Notebook display, drawn by ``runstack.visualizers`` (never loads an artifact)."""
        return html_of(self)


class PipelineView:
    """A pipeline and its runs."""

    def __init__(
        self,
        store: SQLMetadataStore,
        record: PipelineRecord,
        artifacts: ArtifactStore | None = None,
    ) -> None:
        self._store = store
        self._artifacts = artifacts
        self._record = record

    id = property(lambda self: self._record.id)
    name = property(lambda self: self._record.name)
    created_at = property(lambda self: self._record.created_at)

    def _views(self, records: list[RunRecord], whole: bool) -> list[RunView]:
        group = RunGroup(self._store, (r.id for r in records), self.id if whole else None)
        return [RunView(self._store, r, group, self._artifacts) for r in records]

    @property
    def runs(self) -> list[RunView]:
        """All runs, oldest first."""
        return self.get_runs()

    def get_runs(
        self,
        *,
        status: ExecutionStatus | str | None = None,
        name_prefix: str | None = None,
        started_after: datetime | None = None,
        started_before: datetime | None = None,
        parameters: Mapping[str, Any] | None = None,
        limit: int | None = None,
        offset: int = 0,
        newest_first: bool = False,
    ) -> list[RunView]:
        """Runs filtered, ordered and paged in the database (oldest first unless ``newest_first``).

        All filters must hold: ``status`` (e.g. ``"failed"``), ``name_prefix``, a start-time
        window ``started_after <= start < started_before`` (aware datetimes; naive means UTC),
        and ``parameters`` mapping ``"<step>.<parameter>"`` to a value, e.g.
        ``get_runs(parameters={"trainer.lr": 0.1}, status="completed", limit=10)``.
        """
        records = self._store.list_runs(
            self.id,
            status=status,
            name_prefix=name_prefix,
            started_after=started_after,
            started_before=started_before,
            parameters=parameters,
            limit=limit,
            offset=offset,
            newest_first=newest_first,
        )
        # Steps of a whole pipeline's history may be loaded by pipeline instead of by id list.
        whole = not (status or name_prefix or started_after or started_before or parameters)
        return self._views(records, whole and limit is None and not offset)

    def get_run_names(self) -> list[str]:
        return self._store.run_names(self.id)

    def get_run(self, name: str | None = None, *, run_name: str | None = None) -> RunView:
        name = name if name is not None else run_name
        if name is None:
            raise TypeError("get_run() needs a run name, e.g. pipeline.get_run('my-run').")
        record = self._store.get_run(name, pipeline_id=self.id)
        if record is None:
            raise RunNotFoundError(
                f"Pipeline {self.name!r} has no run {name!r}. "
                + did_you_mean(name, self.get_run_names()[-50:], "runs (latest 50)")
            )
        return RunView(self._store, record, None, self._artifacts)

    @property
    def latest_run(self) -> RunView:
        """The most recently started run."""
        return self._latest(None)

    @property
    def latest_successful_run(self) -> RunView:
        """The most recently started run that completed."""
        return self._latest(ExecutionStatus.COMPLETED)

    def _latest(self, status: ExecutionStatus | None) -> RunView:
        records = self._store.list_runs(self.id, status=status, limit=1, newest_first=True)
        if not records:
            what = "runs" if status is None else f"{status.value} runs"
            raise RunNotFoundError(f"Pipeline {self.name!r} has no {what}.")
        return RunView(self._store, records[0], None, self._artifacts)

    def __repr__(self) -> str:
        return f"PipelineView(name={self.name!r})"

    def _repr_html_(self) -> str:
        """Notebook display, drawn by ``runstack.visualizers`` (never loads an artifact)."""
        return html_of(self)
