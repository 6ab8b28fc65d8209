"""Batch loading for views: the first view of a group to need its children loads them for all.

Listing N runs and touching each run's steps or outputs costs a constant number of queries.
A whole history's listing holds only run ids until a view needs a record. Asking every run
for one step (the scan pattern) loads that step of every run in one query, and asking those
steps for one output loads that output of all of them, with its artifact, in one more; rows
are kept, and a view decodes a record only when it is used.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from operator import itemgetter
from typing import Any, TypeVar

from runstack.exceptions import OutputNotFoundError, RunNotFoundError, StepNotFoundError
from runstack.metadata_stores import SQLMetadataStore
from runstack.metadata_stores._rows import artifact_record
from runstack.models import ArtifactLink, ArtifactRecord, RunRecord, StepRecord

T = TypeVar("T")

# Above this many ids, query by the pipeline the group came from instead of a long IN list.
_SCOPE_THRESHOLD = 500
_CHUNK = 500


def _chunked(ids: Sequence[int], fetch: Callable[[Sequence[int]], list[T]]) -> list[T]:
    out: list[T] = []
    for i in range(0, len(ids), _CHUNK):
        out.extend(fetch(ids[i : i + _CHUNK]))
    return out


class RunGroup:
    """Runs listed together; their records (when listed by id only), steps and tags are
    loaded together."""

    def __init__(
        self,
        store: SQLMetadataStore,
        run_ids: Iterable[int],
        pipeline_id: int | None,
        records: dict[int, RunRecord] | None = None,
    ):
        self.store = store
        self.run_ids = list(run_ids)
        self._members = set(self.run_ids)  # membership tests per run must not be O(runs)
        self.pipeline_id = pipeline_id
        self._records = records
        self._steps: dict[int, list[StepRecord]] | None = None
        self.step_group: StepGroup | None = None
        # By step name asked of every run: step ids by run, slots by run (where not the
        # name: found by entrypoint), and the steps' group.
        self._named: dict[str, tuple[dict[int, int], dict[int, str], StepGroup]] = {}
        self._tags: dict[int, dict[str, str]] | None = None

    def _scoped(self) -> bool:
        return self.pipeline_id is not None and len(self.run_ids) > _SCOPE_THRESHOLD

    def record_of(self, run_id: int) -> RunRecord:
        """The record of a run listed by id, loaded for every run of the group at once."""
        if self._records is None:
            if self._scoped():
                assert self.pipeline_id is not None
                found = self.store.list_runs(self.pipeline_id)
            else:
                found = _chunked(self.run_ids, self.store.runs_by_ids)
            self._records = {r.id: r for r in found if r.id in self._members}
        record = self._records.get(run_id)
        if record is None:
            raise RunNotFoundError(
                f"Run #{run_id} was deleted after it was listed; list the runs again."
            )
        return record

    def _fetch(self, name: str | None) -> list[StepRecord]:
        if self._scoped():
            return self.store.steps_of_runs(pipeline_id=self.pipeline_id, name=name)
        return _chunked(self.run_ids, lambda ids: self.store.steps_of_runs(ids, name=name))

    def steps_named(self, run_id: int, name: str) -> tuple[int, str, StepGroup] | None:
        """``(id, slot, group)`` of the step of ``run_id`` that ``get_step(name)`` means (its
        slot, else its only entrypoint, is ``name``), loaded for every run of the group at
        once (the "one output of every run" pattern); None when the run has no such step or
        several, is not one of the group's, or the group has all steps loaded already."""
        if self._steps is not None:
            return None
        named = self._named.get(name)  # the scan's path: once per run
        if named is None:
            if run_id not in self._members or len(self.run_ids) < 2:
                return None
            named = self._named[name] = self._scan_named(name)
        ids, slots, group = named
        step_id = ids.get(run_id)  # (None for a run not of the group)
        if step_id is None:
            return None
        return step_id, slots.get(run_id, name) if slots else name, group

    def _scan_named(self, name: str) -> tuple[dict[int, int], dict[int, str], StepGroup]:
        in_slot = self._scan(name, entrypoint=False)
        members = self._members
        ids = _of(members, dict(zip(map(_second, in_slot), map(_first, in_slot), strict=True)))
        slots: dict[int, str] = {}
        if len(ids) < len(members):
            # Some runs have no step in that slot: one running that entrypoint may be meant.
            slots = _running(self._scan(name, entrypoint=True), ids, members)
        group = StepGroup(self.store, (), self.pipeline_id)
        group.add_scanned(name, ids, slots, None if self._scoped() else self.run_ids)
        return ids, slots, group

    def _scan(self, name: str, *, entrypoint: bool) -> list[Any]:
        store = self.store
        if self._scoped():
            return store.scan_steps(name, pipeline_id=self.pipeline_id, entrypoint=entrypoint)
        return _chunked(
            self.run_ids, lambda ids: store.scan_steps(name, ids, entrypoint=entrypoint)
        )

    def tags_of(self, run_id: int) -> dict[str, str]:
        """The run's tags, loaded for every run of the group at once."""
        if run_id not in self._members:
            return self.store.tags_of_runs([run_id]).get(run_id, {})
        if self._tags is None:
            self._tags = {}
            for i in range(0, len(self.run_ids), _CHUNK):
                self._tags.update(self.store.tags_of_runs(self.run_ids[i : i + _CHUNK]))
        return self._tags.get(run_id, {})

    def steps_of(self, run_id: int) -> list[StepRecord]:
        if self._steps is None:
            wanted = self._members
            records = self._fetch(None)
            by_run: dict[int, list[StepRecord]] = defaultdict(list)
            for r in records:
                if r.run_id in wanted:
                    by_run[r.run_id].append(r)
            self._steps = by_run
            self.step_group = StepGroup(
                self.store, [r for rs in by_run.values() for r in rs], self.pipeline_id
            )
        if run_id not in self._members:  # a run added to the group later (current run)
            return self.store.steps_of_runs([run_id])
        return self._steps.get(run_id, [])


_first, _second = itemgetter(0), itemgetter(1)


def _of(members: set[int], by_id: dict[int, T]) -> dict[int, T]:
    """``by_id`` without the keys not in ``members`` (rows of a whole pipeline include runs
    begun after the listing). Built by C loops: a scan has one entry per run."""
    if by_id.keys() <= members:
        return by_id
    return {k: v for k, v in by_id.items() if k in members}


def _running(rows: list[Any], ids: dict[int, int], members: set[int]) -> dict[int, str]:
    """Of runs without a step in the slot (not in ``ids``), those with exactly one step
    running the entrypoint (``(id, run id, slot)`` rows): added to ``ids``, and their slots
    returned by run. Runs with several (an error, or a choice to make with every step at
    hand) are left out."""
    entry: dict[int, tuple[int, str]] = {}
    several: set[int] = set()
    for step_id, run_id, slot in rows:
        if run_id in members and run_id not in ids:
            if run_id in entry:
                several.add(run_id)
            else:
                entry[run_id] = (step_id, slot)
    slots: dict[int, str] = {}
    for run_id, (step_id, slot) in entry.items():
        if run_id not in several:
            ids[run_id] = step_id
            slots[run_id] = slot
    return slots


class StepGroup:
    """Steps loaded together; outputs are loaded together for all steps of one name, and so
    are the records of steps made from a scan's head rows."""

    def __init__(
        self, store: SQLMetadataStore, steps: Iterable[StepRecord], pipeline_id: int | None
    ):
        self.store = store
        self.pipeline_id = pipeline_id
        self._ids_by_name: dict[str, list[int]] = defaultdict(list)
        self._members: set[int] = set()
        for s in steps:
            self._ids_by_name[s.name].append(s.id)
            self._members.add(s.id)
        self._outputs: dict[int, list[ArtifactLink]] = {}
        self._inputs: dict[int, list[ArtifactLink]] = {}
        self._loaded_out: set[str] = set()
        self._loaded_in: set[str] = set()
        self._records: dict[int, StepRecord] | None = None
        # A scan's name, and its runs (None: every run of the pipeline).
        self._scan: tuple[str, list[int] | None] | None = None
        self._output_rows: dict[str, dict[int, Any]] = {}
        self._artifact_rows: dict[str, dict[int, Any]] = {}

    def add_scanned(
        self, name: str, ids: dict[int, int], slots: dict[int, str], run_ids: list[int] | None
    ) -> None:
        """Take the steps of a scan for ``name`` of ``run_ids`` (None: of every run of the
        group's pipeline): their ids by run, in slot ``name`` unless ``slots`` names another
        for the run."""
        if slots:
            for run_id, step_id in ids.items():
                self._ids_by_name[slots.get(run_id, name)].append(step_id)
        else:
            self._ids_by_name[name].extend(ids.values())
        self._members.update(ids.values())
        self._scan = (name, run_ids)

    @property
    def scanned(self) -> bool:
        """Whether the steps were made from a scan (``add_scanned``)."""
        return self._scan is not None

    def output_row(self, step_id: int, output: str) -> Any:
        """Output ``output`` of a scanned step as a readable ``scan_outputs`` row (None when
        the step has no such output), loaded for every step of the scan at once."""
        rows = self._output_rows.get(output)
        if rows is None:
            rows = self._output_rows[output] = self._scan_outputs(output, readable=True)
        return rows.get(step_id)

    def artifact_of(self, step_id: int, output: str) -> ArtifactRecord:
        """The whole record of output ``output`` of a scanned step (``output_row`` holds what
        reading it needs), loaded for every step of the scan at once."""
        rows = self._artifact_rows.get(output)
        if rows is None:
            rows = self._artifact_rows[output] = self._scan_outputs(output, readable=False)
        row = rows.get(step_id)
        if row is None:
            raise OutputNotFoundError(
                f"Output {output!r} of step #{step_id} was deleted (with its run) after it was "
                "listed; list the runs again."
            )
        return artifact_record(row, 1)

    def _scan_outputs(self, output: str, readable: bool) -> dict[int, Any]:
        assert self._scan is not None
        run_ids = self._scan[1]
        slots = sorted(self._ids_by_name)  # the slots of the steps the scan chose
        store = self.store
        if run_ids is None:
            found = store.scan_outputs(
                slots, output, pipeline_id=self.pipeline_id, readable=readable
            )
        else:
            found = _chunked(
                run_ids, lambda ids: store.scan_outputs(slots, output, ids, readable=readable)
            )
        return _of(self._members, dict(zip(map(_first, found), found, strict=True)))

    def record_of(self, step_id: int) -> StepRecord:
        """The (listed) record of a step made from a scan's head row, loaded for every step
        of the group at once."""
        if self._records is None:
            ids = [i for ids in self._ids_by_name.values() for i in ids]
            name, run_ids = self._scan or ("", [])
            if run_ids is None:
                found = self.store.steps_of_runs(pipeline_id=self.pipeline_id, name=name)
            else:
                found = _chunked(ids, self.store.steps_by_ids)
            self._records = {r.id: r for r in found if r.id in self._members}
        record = self._records.get(step_id)
        if record is None:
            raise StepNotFoundError(
                f"Step #{step_id} was deleted (with its run) after it was listed; list the "
                "runs again."
            )
        return record

    def _load(
        self,
        name: str,
        step_id: int,
        cache: dict[int, list[ArtifactLink]],
        loaded: set[str],
        fetch_ids: Callable[[Sequence[int]], list[ArtifactLink]],
        fetch_scope: Callable[[], list[ArtifactLink]] | None,
    ) -> list[ArtifactLink]:
        if step_id not in self._members:
            return fetch_ids([step_id])
        ids = self._ids_by_name.get(name, [])
        if name not in loaded:
            if fetch_scope is not None and len(ids) > _SCOPE_THRESHOLD:
                links = fetch_scope()
            else:
                links = _chunked(ids, fetch_ids)
            wanted = set(ids)
            for sid in ids:
                cache[sid] = []
            for link in links:
                if link.step_id in wanted:
                    cache[link.step_id].append(link)
            loaded.add(name)
        return cache.get(step_id, [])

    def outputs_of(self, name: str, step_id: int) -> list[ArtifactLink]:
        if name in self._loaded_out and step_id in self._members:  # a scan's every step but one
            return self._outputs.get(step_id, [])
        scope = None
        if self.pipeline_id is not None:
            pid = self.pipeline_id

            def scope() -> list[ArtifactLink]:
                return self.store.outputs_of_steps(pipeline_id=pid, step_name=name)

        return self._load(
            name,
            step_id,
            self._outputs,
            self._loaded_out,
            lambda ids: self.store.outputs_of_steps(ids),
            scope,
        )

    def inputs_of(self, name: str, step_id: int) -> list[ArtifactLink]:
        return self._load(
            name,
            step_id,
            self._inputs,
            self._loaded_in,
            lambda ids: self.store.inputs_of_steps(ids),
            None,
        )
