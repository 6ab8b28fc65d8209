"""Read-only views over recorded history: pipelines -> runs -> steps -> artifacts."""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, overload

from runstack.artifact_stores import _verify
from runstack.exceptions import (
    AmbiguousOutputError,
    ArtifactCorruptedError,
    ArtifactNotFoundError,
    MaterializerError,
    OutputNotFoundError,
    RunNotFoundError,
    RunstackError,
    StepNotFoundError,
    StoreError,
    did_you_mean,
    expect_name,
)
from runstack.materializers import BaseMaterializer
from runstack.materializers._builtin import BuiltInMaterializer, value_of
from runstack.materializers._read import (
    check_materializer,
    load_data_type,
    load_materializer,
    read_artifact,
)
from runstack.metadata_stores import RunFilter, SQLMetadataStore
from runstack.metadata_stores._rows import readable_artifact
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


_new = object.__new__  # views made per run of a scan skip __init__ (and its argument checks)


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

    # Slots: a history scan creates one per run.
    __slots__ = ("_artifacts", "_consumer_step_id", "_group", "_rec", "_store", "name")
    _rec: ArtifactRecord
    _group: StepGroup | None

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
        self._rec = record
        self._group = None
        self.name = name
        self._consumer_step_id = consumer_step_id

    @classmethod
    def _scanned(
        cls,
        store: SQLMetadataStore,
        row: Any,
        name: str,
        step_id: int,
        group: StepGroup,
        artifacts: ArtifactStore | None,
    ) -> ArtifactView:
        """A view from a scan's readable row (``readable_artifact``): the rest of its record
        is loaded (for the whole group) when something beyond reading it is asked."""
        view = _new(cls)
        view._store = store
        view._artifacts = artifacts
        view._rec = readable_artifact(row, 1)
        view._group = group
        view.name = name
        view._consumer_step_id = step_id
        return view

    @property
    def _record(self) -> ArtifactRecord:
        """The whole record (``_rec`` alone holds what reading a value kept inline needs)."""
        group = self._group
        if group is not None:
            self._rec = group.artifact_of(self._consumer_step_id, self.name)
            self._group = None
        return self._rec

    @property
    def id(self) -> int:
        return self._rec.id

    @property
    def uri(self) -> str:
        return self._record.uri

    @property
    def data_type(self) -> str:
        """Dotted path of the type of the value that was written."""
        return self._rec.data_type

    @property
    def materializer(self) -> str:
        """Dotted path of the materializer class that wrote the artifact."""
        return self._rec.materializer

    @property
    def content_hash(self) -> str | None:
        return self._rec.content_hash

    @property
    def is_inline(self) -> bool:
        """True for a small value kept with its record in the metadata store (no files at
        ``uri``); ``read()``, the cache, exports and garbage collection treat both alike."""
        return self._rec.inline is not None

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

    @property
    def consumers(self) -> list[StepView]:
        """Every step, in any run, that took this artifact as an input (steps that were
        themselves reused from the cache included), oldest first; two queries."""
        from runstack.post_execution._lineage import linked_steps

        return [s for _, s in linked_steps(self._store, "input", self._record, self._artifacts)]

    @property
    def reused_by(self) -> list[StepView]:
        """Steps in later runs that reused this artifact as their own output (cache hits)."""
        from runstack.post_execution._lineage import linked_steps

        linked = linked_steps(self._store, "output", self._record, self._artifacts)
        return [s for _, s in linked if s.id != self._record.producer_step_id]

    def lineage(self) -> dict[str, Any]:
        """Both ways as plain data: ``upstream`` (producer and, recursively, its inputs) and
        ``downstream`` (consumers in any run, what they made, and cache reuses)."""
        from runstack.post_execution._lineage import downstream, upstream

        return {
            "upstream": upstream(self._store, self._record),
            "downstream": downstream(self._store, self._record),
        }

    def read(
        self,
        output_data_type: type | None = None,
        materializer: type[BaseMaterializer] | None = None,
        *,
        materializer_class: type[BaseMaterializer] | None = None,
        verify: bool | None = None,
    ) -> Any:
        """Load the value; with the materializer that wrote it unless another is given.

        The files are first checked against the record: every file written must be there
        with its size, and the content hash is compared when the artifact is at most
        ``RUNSTACK_VERIFY_MAX_BYTES`` (64 MiB by default), always with ``verify=True``, never
        with ``verify=False``. A mismatch raises ``ArtifactCorruptedError``.

        The recorded materializer and type are resolved without running code they name (see
        ``runstack.materializers._read``); a pickle-based artifact is read only if it was
        recorded as one when written, with a warning logged.
        """
        chosen = materializer or materializer_class
        if chosen is not None:
            check_materializer(chosen, "read(materializer=...)")
        record = self._rec  # a scan's view reads a value kept inline without the rest
        try:
            mat = chosen or load_materializer(record.materializer)
            if output_data_type is None:
                output_data_type = load_data_type(record.data_type)
            if record.inline is not None:  # kept in the record: no file, nothing to confine
                if verify is not False:
                    _verify.verify_inline(record)
                if mat is BuiltInMaterializer and output_data_type is not bytes:
                    # What the materializer would return, without making one; if the bytes
                    # do not decode, the materializer's own read below raises its error.
                    try:
                        return value_of(record.inline, output_data_type)
                    except Exception:
                        pass
                return read_artifact(self._record, mat, output_data_type)
            artifacts = artifact_store_of(self._artifacts)
            self._verify(artifacts, verify)
            return read_artifact(self._record, mat, output_data_type, artifacts.fs)
        except (ArtifactNotFoundError, ArtifactCorruptedError, MaterializerError) as e:
            raise type(e)(f"Cannot read {self._where()}: {e}") from e

    def verify(self) -> bool:
        """Check every file against the record, content hash included (``runstack artifact
        verify``): ``True`` when the hash was compared, ``False`` when the artifact has none
        (over ``RUNSTACK_CONTENT_HASH_MAX_BYTES`` when written, or recorded before runstack
        hashed artifacts), where only the files and their sizes are checked. Raises
        ``ArtifactCorruptedError`` or ``ArtifactNotFoundError`` naming the producing run."""
        try:
            self._verify(artifact_store_of(self._artifacts), True)
        except (ArtifactNotFoundError, ArtifactCorruptedError) as e:
            raise type(e)(f"Cannot read {self._where()}: {e}") from e
        return self._record.content_hash is not None

    def _verify(self, artifacts: ArtifactStore, verify: bool | None) -> None:
        if verify is False:
            artifacts.check(self._record.uri, f"Artifact #{self._record.id}")
        else:
            _verify.verify(artifacts, self._record, full=verify)

    def _where(self) -> str:
        producer = self._store.get_step_by_id(self._record.producer_step_id)
        run = self._store.run_names_of_steps([self._record.producer_step_id])
        return (
            f"output {self.name!r} of step {producer.name!r} in run {run.get(producer.id)!r}"
            if producer is not None
            else f"artifact {self.name!r}"
        )

    def __reduce_ex__(self, protocol: Any) -> Any:
        # Pickled and copied with its whole record: a scan's view holds only part of it (and
        # the scan's rows), which neither pickles nor copies.
        self._record  # noqa: B018
        return super().__reduce_ex__(protocol)

    def __repr__(self) -> str:
        try:
            uri = repr(self.uri)
        except RunstackError:  # a scan's view whose run was deleted after the listing
            uri = "(deleted)"
        return f"ArtifactView(name={self.name!r}, data_type={self.data_type!r}, uri={uri})"

    def _repr_html_(self) -> str:
        """Notebook display, drawn by ``runstack.visualizers`` (never loads an artifact)."""
        return html_of(self)


class StepArtifacts(Mapping[str, ArtifactView]):
    """A step's inputs or outputs in declared order, by name (``["x"]``) or position (``[0]``).

    Views are made on access: a history scan usually reads one output of each step. The
    outputs of a step made by a scan (``group``) are not listed until needed: ``["x"]`` asks
    the scan for output ``x`` of every step at once.
    """

    # Slots: a history scan creates one per run.
    __slots__ = (
        "_artifacts",
        "_by_name",
        "_group",
        "_kind",
        "_step",
        "_step_id",
        "_store",
        "_views",
    )

    def __init__(
        self,
        store: SQLMetadataStore,
        step_id: int,
        step_name: str,
        kind: str,
        links: list[ArtifactLink] | None,
        artifacts: ArtifactStore | None = None,
        group: StepGroup | None = None,
    ) -> None:
        self._store = store
        self._artifacts = artifacts
        self._step_id = step_id
        self._step = step_name
        self._kind = kind
        self._group = group
        self._by_name = None if links is None else {link.name: link for link in links}
        self._views: dict[str, ArtifactView] = {}

    @property
    def _links(self) -> dict[str, ArtifactLink]:
        links = self._by_name
        if links is None:
            assert self._group is not None  # links are left out only for a scan's steps
            found = self._group.outputs_of(self._step, self._step_id)
            links = self._by_name = {link.name: link for link in found}
        return links

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
        if self._by_name is None and type(key) is str:  # a scan's step: this output of all
            view = self._views.get(key) if self._views else None
            if view is not None:
                return view
            group = self._group
            assert group is not None
            row = group.output_row(self._step_id, key)
            if row is not None:
                view = self._views[key] = ArtifactView._scanned(
                    self._store, row, key, self._step_id, group, self._artifacts
                )
                return view
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
    __slots__ = (
        "_artifacts",
        "_group",
        "_id",
        "_inputs",
        "_name",
        "_outputs",
        "_rec",
        "_run",
        "_store",
    )
    _id: int
    _name: str
    _rec: StepRecord | None

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

    @classmethod
    def _scanned(
        cls,
        store: SQLMetadataStore,
        step_id: int,
        slot: str,
        run: RunView,
        group: StepGroup,
        artifacts: ArtifactStore | None,
    ) -> StepView:
        """A view of a step a scan found: its record is loaded (for the whole group) only
        when something beyond id, name and outputs is asked."""
        view = _new(cls)
        view._store = store
        view._artifacts = artifacts
        view._id = step_id
        view._name = slot
        view._rec = None
        view._run = run
        view._group = group
        view._outputs = None
        view._inputs = None
        return view

    @property
    def _record(self) -> StepRecord:
        record = self._rec
        if record is None:
            assert self._group is not None  # only scanned views start without a record
            record = self._rec = self._group.record_of(self._id)
        return record

    @_record.setter
    def _record(self, record: StepRecord) -> None:
        self._rec = record
        self._id = record.id
        self._name = record.name

    id = property(lambda self: self._id)
    name = property(lambda self: self._name, doc="The step's slot in the pipeline.")
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
        group = self._group
        if kind == "output":
            if group is not None:
                return group.outputs_of(self._name, self._id)
            return self._store.outputs_of_steps([self._id])
        if group is not None:
            return group.inputs_of(self._name, self._id)
        return self._store.inputs_of_steps([self._id])

    @property
    def outputs(self) -> StepArtifacts:
        """Outputs in the order of ``Output(...)``; index by name or position."""
        if self._outputs is None:
            group = self._group
            if group is not None and group.scanned:  # listed when needed (see StepArtifacts)
                self._outputs = StepArtifacts(
                    self._store, self._id, self._name, "output", None, self._artifacts, group
                )
            else:
                self._outputs = StepArtifacts(
                    self._store,
                    self._id,
                    self._name,
                    "output",
                    self._links("output"),
                    self._artifacts,
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

    __slots__ = ("_artifacts", "_group", "_id", "_rec", "_steps", "_store", "stack_key")
    _id: int
    _rec: RunRecord | None

    def __init__(
        self,
        store: SQLMetadataStore,
        record: RunRecord,
        group: RunGroup | None,
        artifacts: ArtifactStore | None = None,
        stack_key: str | None = None,
    ) -> None:
        self._store = store
        self._artifacts = artifacts
        self._record = record
        self._group = group
        self._steps: list[StepView] | None = None
        #: The stack whose metadata store holds this run (None when read from a bare store).
        self.stack_key = stack_key

    @classmethod
    def _listed(
        cls,
        store: SQLMetadataStore,
        group: RunGroup,
        artifacts: ArtifactStore | None,
        stack_key: str | None,
    ) -> list[RunView]:
        """Views of the runs of a listing by id: each record is loaded, for the whole group at
        once, when something beyond the run's id and steps is asked. (One loop, not a call
        per run: a whole history's listing makes thousands.)"""
        views = []
        for run_id in group.run_ids:
            view = _new(cls)
            view._store = store
            view._artifacts = artifacts
            view._id = run_id
            view._rec = None
            view._group = group
            view._steps = None
            view.stack_key = stack_key
            views.append(view)
        return views

    @property
    def _record(self) -> RunRecord:
        record = self._rec
        if record is None:
            assert self._group is not None  # only listed views start without a record
            record = self._rec = self._group.record_of(self._id)
        return record

    @_record.setter
    def _record(self, record: RunRecord) -> None:
        self._rec = record
        self._id = record.id

    id = property(lambda self: self._id)
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

    note = property(
        lambda self: self._record.note, doc="Free text about the run (`runstack run note`)."
    )

    @property
    def tags(self) -> dict[str, str]:
        """The run's ``key -> value`` labels as recorded now (a listing loads all at once)."""
        if self._group is None:
            self._group = RunGroup(self._store, [self.id], None)
        return dict(self._group.tags_of(self.id))

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

    @property
    def upstream_runs(self) -> list[RunView]:
        """Other runs whose artifacts this run consumed or reused from the cache, oldest
        first; one query."""
        from runstack.post_execution._lineage import run_views

        records = self._store.upstream_runs(self.id)
        return list(run_views(self._store, records, self._artifacts).values())

    def get_step_names(self) -> list[str]:
        return [s.name for s in self.steps]

    def get_step(self, name: str | None = None, *, step: str | None = None) -> StepView:
        """A step by its pipeline slot name, or by its entrypoint name when that is unambiguous."""
        if type(name) is not str:  # (a scan calls this once per run: a str goes straight on)
            name = name if name is not None else step
            if name is None:
                raise TypeError("get_step() needs the step's name, e.g. run.get_step('trainer').")
            name = expect_name(name, "get_step()'s step name")
        if self._steps is None and self._group is not None:
            # Asking each run of a listing for one step loads that step for all of them only.
            found = self._group.steps_named(self._id, name)
            if found is not None:
                step_id, slot, group = found
                return StepView._scanned(self._store, step_id, slot, self, group, self._artifacts)
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
        stack = f", stack={self.stack_key!r}" if self.stack_key is not None else ""
        return f"RunView(name={self.name!r}, status={self.status.value!r}{stack})"

    def _repr_html_(self) -> str:
        """Notebook display, drawn by ``runstack.visualizers`` (never loads an artifact)."""
        return html_of(self)


class PipelineView:
    """A pipeline and its runs on one stack (``stack_key``): a pipeline that ran on several
    stacks with different metadata stores has one view per stack."""

    def __init__(
        self,
        store: SQLMetadataStore,
        record: PipelineRecord,
        artifacts: ArtifactStore | None = None,
        stack_key: str | None = None,
    ) -> None:
        self._store = store
        self._artifacts = artifacts
        self._record = record
        #: The stack whose metadata store holds these runs (None when read from a bare store).
        self.stack_key = stack_key

    id = property(lambda self: self._record.id)
    name = property(lambda self: self._record.name)
    created_at = property(lambda self: self._record.created_at)

    def _views(self, records: list[RunRecord]) -> list[RunView]:
        group = RunGroup(self._store, (r.id for r in records), None)
        return [RunView(self._store, r, group, self._artifacts, self.stack_key) for r in records]

    @property
    def runs(self) -> list[RunView]:
        """All runs, oldest first."""
        return self.get_runs()

    def get_runs(
        self,
        where: RunFilter | None = None,
        *,
        status: ExecutionStatus | str | None = None,
        name_prefix: str | None = None,
        started_after: datetime | None = None,
        started_before: datetime | None = None,
        parameters: Mapping[str, Any] | None = None,
        limit: int | None = None,
        offset: int = 0,
        newest_first: bool = False,
        tags: Mapping[str, str] | None = None,
    ) -> list[RunView]:
        """Runs filtered, ordered and paged in the database (oldest first unless ``newest_first``).

        All filters must hold: ``status`` (e.g. ``"failed"``), ``name_prefix``, a start-time
        window ``started_after <= start < started_before`` (aware datetimes; naive means UTC),
        and ``parameters`` mapping ``"<step>.<parameter>"`` to a value, e.g.
        ``get_runs(parameters={"trainer.lr": 0.1}, status="completed", limit=10)``, and
        ``tags`` the run carries, e.g. ``get_runs(tags={"exp": "lr-sweep"})``. The same
        filter as a value: ``get_runs(RunFilter(status="failed", limit=10))`` (not both).
        """
        given = RunFilter(
            status=status,
            name_prefix=name_prefix,
            started_after=started_after,
            started_before=started_before,
            parameters=parameters,
            tags=tags,
            limit=limit,
            offset=offset,
            newest_first=newest_first,
        )
        if where is not None and given != RunFilter():
            raise TypeError(
                "get_runs() takes a RunFilter or filter keywords, not both; put every "
                "condition in the RunFilter, e.g. dataclasses.replace(where, status='failed')."
            )
        where = where or given
        if where.narrows:
            return self._views(self._store.list_runs(self.id, where))
        # A whole history: ids from the index; records, steps and outputs are loaded for all
        # runs when first needed, by pipeline rather than by a long id list.
        ids = self._store.list_run_ids(self.id, where.newest_first)
        return RunView._listed(
            self._store, RunGroup(self._store, ids, self.id), self._artifacts, self.stack_key
        )

    def get_run_names(self) -> list[str]:
        return self._store.run_names(self.id)

    def get_run(self, name: str | None = None, *, run_name: str | None = None) -> RunView:
        name = name if name is not None else run_name
        if name is None:
            raise TypeError("get_run() needs a run name, e.g. pipeline.get_run('my-run').")
        name = expect_name(name, "get_run()'s run name")
        record = self._store.get_run(name, pipeline_id=self.id)
        if record is None:
            raise RunNotFoundError(
                f"Pipeline {self.name!r} has no run {name!r}. "
                + did_you_mean(name, self.get_run_names()[-50:], "runs (latest 50)")
            )
        return RunView(self._store, record, None, self._artifacts, self.stack_key)

    @property
    def latest_run(self) -> RunView:
        """The most recently started run."""
        return self._latest(None)

    @property
    def latest_successful_run(self) -> RunView:
        """The most recently started run that completed."""
        return self._latest(ExecutionStatus.COMPLETED)

    def _latest(self, status: ExecutionStatus | None) -> RunView:
        records = self._store.list_runs(
            self.id, RunFilter(status=status, limit=1, newest_first=True)
        )
        if not records:
            what = "runs" if status is None else f"{status.value} runs"
            raise RunNotFoundError(f"Pipeline {self.name!r} has no {what}.")
        return RunView(self._store, records[0], None, self._artifacts, self.stack_key)

    def __repr__(self) -> str:
        stack = f", stack={self.stack_key!r}" if self.stack_key is not None else ""
        return f"PipelineView(name={self.name!r}{stack})"

    def _repr_html_(self) -> str:
        """Notebook display, drawn by ``runstack.visualizers`` (never loads an artifact)."""
        return html_of(self)
