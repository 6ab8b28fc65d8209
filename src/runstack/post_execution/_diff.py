"""What differs between two runs: steps, cache-key components and outputs, down to the data.

Steps are matched by their slot name, so runs of two pipelines with the same slot names
compare too (``RunDiff.same_pipeline`` says when they do). For each step the cache-key
components recorded at run time are compared with the same describer ``step explain`` uses
(:func:`runstack.post_execution._explain.component_changes`). Outputs are the same when their
content hashes are equal; when they differ, the artifacts are looked into as far as that is
safe and cheap (:mod:`runstack.post_execution._artifact_diff`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from runstack.exceptions import StepNotFoundError, did_you_mean
from runstack.post_execution._artifact_diff import (
    ArtifactDiff,
    Delta,
    _ToDict,
    artifact_diff,
)
from runstack.post_execution._explain import ComponentChange, component_changes
from runstack.post_execution._json import artifacts_of
from runstack.post_execution._peek import READ_LIMIT

if TYPE_CHECKING:
    from runstack.post_execution._views import ArtifactView, RunView, StepArtifacts, StepView


@dataclass(frozen=True)
class OutputDiff(_ToDict):
    """One output slot of a step in both runs.

    ``presence``: ``both``, ``only_a`` or ``only_b``. ``same``: True when the content hashes
    are equal (or it is the same artifact), False when they differ, None when it cannot be
    told (an artifact too large to hash has none). ``detail`` looks into the data when it
    is not the same.
    """

    name: str
    presence: str
    same: bool | None
    content_hash: Delta
    data_type: Delta
    materializer: Delta
    detail: ArtifactDiff | None = None

    @property
    def differs(self) -> bool:
        return self.presence != "both" or self.same is not True

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "differs": self.differs}


@dataclass(frozen=True)
class StepDiff(_ToDict):
    """One step slot in both runs: presence (``both``, ``only_a``, ``only_b``), entrypoint,
    status, whether it was cached, duration, each cache-key component that differs, outputs.

    A step that ran in one run and was reused from the cache in the other, with nothing else
    different, does not count as differing (``differs``): its results are the same.
    """

    name: str
    presence: str
    entrypoint: Delta
    status: Delta
    cached: Delta
    duration: Delta  # seconds; never counts as a difference
    cache_key_same: bool | None
    changes: tuple[ComponentChange, ...] = ()
    outputs: tuple[OutputDiff, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def differs(self) -> bool:
        outcome = Delta(*(_outcome(s) for s in (self.status.before, self.status.after)))
        return (
            self.presence != "both"
            or self.entrypoint.changed
            or outcome.changed
            or bool(self.changes)
            or any(o.differs for o in self.outputs)
        )

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "differs": self.differs}


def _outcome(status: str | None) -> str | None:
    return "completed" if status == "cached" else status


@dataclass(frozen=True)
class RunSummary(_ToDict):
    """Who is compared: a run's name, pipeline, status and start time (ISO 8601)."""

    name: str
    pipeline: str
    status: str
    start_time: str | None


@dataclass(frozen=True)
class RunDiff(_ToDict):
    """What differs between run ``a`` and run ``b`` (``a.diff(b)``: a is before, b after).

    ``steps`` holds every step slot of either run (those of ``a`` in execution order, then
    those only in ``b``); ``differences`` only those that differ. ``to_dict()`` gives all of
    it as JSON-ready data; ``str()`` the differences as text.
    """

    a: RunSummary
    b: RunSummary
    same_pipeline: bool
    steps: tuple[StepDiff, ...]

    @property
    def differences(self) -> tuple[StepDiff, ...]:
        return tuple(s for s in self.steps if s.differs)

    @property
    def identical(self) -> bool:
        """No step differs (statuses aside from cached-or-ran; see :class:`StepDiff`)."""
        return not self.differences

    def step(self, name: str) -> StepDiff:
        """The diff of one step slot, by name."""
        for s in self.steps:
            if s.name == name:
                return s
        raise StepNotFoundError(
            f"No step {name!r} in run {self.a.name!r} or {self.b.name!r}. "
            + did_you_mean(name, [s.name for s in self.steps], "steps")
        )

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "identical": self.identical}

    def _repr_html_(self) -> str:
        """Notebook display, drawn by ``runstack.visualizers``."""
        from runstack.post_execution._display import html_of

        return html_of(self)

    def __str__(self) -> str:
        head = f"Run {self.a.name!r} -> {self.b.name!r}"
        if not self.same_pipeline:
            head += (
                f" (pipelines {self.a.pipeline!r} and {self.b.pipeline!r}; steps matched "
                "by slot name)"
            )
        if self.identical:
            return head + ": no differences."
        lines = [head + ":"]
        for s in self.differences:
            if s.presence != "both":
                run = self.a.name if s.presence == "only_a" else self.b.name
                lines.append(f"  step {s.name}: only in run {run!r}")
                continue
            status = f": {s.status}" if s.status.changed else ""
            lines.append(f"  step {s.name}{status}")
            lines += [f"    - {c.description}" for c in s.changes]
            for o in s.outputs:
                if o.differs:
                    lines.append(f"    output {o.name}: {_output_summary(o)}")
            lines += [f"    note: {n}" for n in s.notes]
        return "\n".join(lines)


def _output_summary(o: OutputDiff) -> str:
    if o.presence != "both":
        return "only in run " + ("A" if o.presence == "only_a" else "B")
    if o.detail is not None:
        return o.detail.summary
    return "same content" if o.same else "content differs"


# -- building it ------------------------------------------------------------------------------


def diff_runs(a: RunView, b: RunView, *, read_limit: int = READ_LIMIT) -> RunDiff:
    """Compare run ``a`` (before) with run ``b`` (after); see :class:`RunDiff`.

    ``read_limit`` bounds the bytes of any one artifact read to describe how it differs
    (0: compare hashes only, open nothing).
    """
    steps_a = {s.name: s for s in a.steps}
    steps_b = {s.name: s for s in b.steps}
    outputs = artifacts_of([*steps_a.values(), *steps_b.values()], "output")
    names = list(steps_a) + [n for n in steps_b if n not in steps_a]
    return RunDiff(
        a=_summary(a),
        b=_summary(b),
        same_pipeline=a.pipeline_name == b.pipeline_name,
        steps=tuple(
            _step_diff(n, steps_a.get(n), steps_b.get(n), outputs, (a.name, b.name), read_limit)
            for n in names
        ),
    )


def _summary(run: RunView) -> RunSummary:
    start = run.start_time.isoformat() if run.start_time is not None else None
    return RunSummary(run.name, run.pipeline_name, run.status.value, start)


def _presence(a: object | None, b: object | None) -> str:
    return "both" if a is not None and b is not None else ("only_a" if b is None else "only_b")


def _step_diff(
    name: str,
    a: StepView | None,
    b: StepView | None,
    outputs: dict[int, StepArtifacts],
    runs: tuple[str, str],
    limit: int,
) -> StepDiff:
    def both(get: Any) -> Delta:
        return Delta(get(a) if a is not None else None, get(b) if b is not None else None)

    base: dict[str, Any] = {
        "name": name,
        "presence": _presence(a, b),
        "entrypoint": both(lambda s: s.entrypoint_name),
        "status": both(lambda s: s.status.value),
        "cached": both(lambda s: s.is_cached),
        "duration": both(lambda s: s.duration),
    }
    if a is None or b is None:
        return StepDiff(**base, cache_key_same=None)
    keys = (a.cache_key, b.cache_key)
    same_key = keys[0] is not None and keys[0] == keys[1]
    # Equal keys are digests of equal components: nothing to load (a query each) or compare.
    changes, notes = ([], []) if same_key else _changes_between(a, b, runs)
    outs_a, outs_b = outputs[a.id], outputs[b.id]
    out_names = list(outs_a) + [n for n in outs_b if n not in outs_a]
    return StepDiff(
        **base,
        cache_key_same=None if None in keys else keys[0] == keys[1],
        changes=tuple(changes),
        outputs=tuple(_output_diff(n, outs_a.get(n), outs_b.get(n), limit) for n in out_names),
        notes=tuple(notes),
    )


def _changes_between(
    a: StepView, b: StepView, runs: tuple[str, str]
) -> tuple[list[ComponentChange], list[str]]:
    comps_a, comps_b = a.cache_components, b.cache_components
    if comps_a and comps_b:
        return component_changes(b.entrypoint_name, comps_a, comps_b), []
    notes = [
        f"no cache components were recorded in run {run!r} (the step failed before its "
        "inputs were loaded, or ran before runstack recorded them): only parameters are "
        "compared"
        for comps, run in ((comps_a, runs[0]), (comps_b, runs[1]))
        if not comps
    ]
    only_parameters = component_changes(
        b.entrypoint_name, {"parameters": a.parameters}, {"parameters": b.parameters}
    )
    return only_parameters, notes


def _output_diff(
    name: str, a: ArtifactView | None, b: ArtifactView | None, limit: int
) -> OutputDiff:
    def both(get: Any) -> Delta:
        return Delta(get(a) if a is not None else None, get(b) if b is not None else None)

    base: dict[str, Any] = {
        "name": name,
        "presence": _presence(a, b),
        "content_hash": both(lambda v: v.content_hash),
        "data_type": both(lambda v: v.data_type),
        "materializer": both(lambda v: v.materializer),
    }
    if a is None or b is None:
        return OutputDiff(**base, same=None)
    if a.id == b.id:
        same: bool | None = True
    elif a.content_hash is not None and b.content_hash is not None:
        same = a.content_hash == b.content_hash
    else:
        same = None
    detail = None if same else artifact_diff(a, b, read_limit=limit)
    if same is None and detail is not None:
        unknown = "no content hash (too large to hash): whether the content is the same is unknown"
        detail = _with_note(detail, unknown)
    return OutputDiff(**base, same=same, detail=detail)


def _with_note(detail: ArtifactDiff, note: str) -> ArtifactDiff:
    import dataclasses

    joined = f"{detail.note}; {note}" if detail.note else note
    return dataclasses.replace(detail, note=joined)
