"""Deleting runs and retention (``runstack run delete``, ``runstack gc``).

Records go first (``RunPruning``: one transaction per batch, the cache never left pointing
at a deleted step), files after, through the artifact store (which refuses URIs outside its
root). A crash in between leaves only files no record names; the next ``gc`` removes them,
with the ``.partial-*`` staging folders of crashed writes, once older than a grace period.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from runstack.artifact_stores import ArtifactStore
from runstack.exceptions import ArtifactNotFoundError, RunstackError
from runstack.metadata_stores import RunFilter, SQLMetadataStore
from runstack.metadata_stores._pruning import PlanChanged, Pruning
from runstack.models import ExecutionStatus, RunRecord

DEFAULT_GRACE = timedelta(hours=6)
_REPLANS = 5
_DURATION = re.compile(r"(\d+)\s*([smhdw])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: str) -> timedelta:
    """``"30d"``, ``"12h"``, ``"2w"``, ``"90m"``, ``"45s"`` as a timedelta."""
    m = _DURATION.fullmatch(text.strip())
    if m is None:
        raise RunstackError(
            f"Not a duration: {text!r}. Give a number and a unit (s, m, h, d or w), e.g. 30d."
        )
    return timedelta(seconds=int(m.group(1)) * _UNITS[m.group(2)])


@dataclass
class Removal:
    """What a delete or gc removed or, for a dry run, would remove; sizes in bytes."""

    dry_run: bool
    runs: list[str] = field(default_factory=list)  # run records removed
    steps: int = 0  # step records removed
    kept: dict[str, list[str]] = field(default_factory=dict)  # run -> steps others still need
    running: list[str] = field(default_factory=list)  # selected, but running: untouched
    artifacts: list[tuple[str, int]] = field(default_factory=list)
    logs: list[tuple[str, int]] = field(default_factory=list)
    orphans: list[tuple[str, int]] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # outside the artifact store's root

    @property
    def bytes(self) -> int:
        return sum(size for _, size in (*self.artifacts, *self.logs, *self.orphans))

    def as_dict(self) -> dict[str, object]:
        return {
            "dry_run": self.dry_run,
            "runs": self.runs,
            "steps": self.steps,
            "kept_for_other_runs": self.kept,
            "running_untouched": self.running,
            "artifacts": [{"uri": u, "bytes": b} for u, b in self.artifacts],
            "logs": [{"uri": u, "bytes": b} for u, b in self.logs],
            "orphans": [{"uri": u, "bytes": b} for u, b in self.orphans],
            "outside_artifact_store": self.refused,
            "bytes": self.bytes,
        }


def select_runs(
    store: SQLMetadataStore,
    *,
    keep_last: int | None = None,
    older_than: timedelta | None = None,
    status: ExecutionStatus | str | None = None,
    pipeline: str | None = None,
    keep_tags: Mapping[str, str] | None = None,
    now: datetime | None = None,
) -> list[RunRecord]:
    """The runs ``gc`` would delete: of ``pipeline`` (or every pipeline) those with ``status``
    that started before ``now - older_than``, except the ``keep_last`` newest of those per
    pipeline, runs tagged with any of ``keep_tags``, and running runs. Nothing is selected
    unless ``keep_last``, ``older_than`` or ``status`` is given."""
    if keep_last is None and older_than is None and status is None:
        return []
    if keep_last is not None and keep_last < 0:
        raise RunstackError(f"--keep-last takes a number of runs >= 0, got {keep_last}.")
    now = now or datetime.now(timezone.utc)
    where = RunFilter(
        status=status, started_before=now - older_than if older_than else None, newest_first=True
    )
    if pipeline is not None:
        found = store.get_pipeline(pipeline)
        if found is None:
            known = [p.name for p in store.list_pipelines()]
            raise RunstackError(f"No pipeline named {pipeline!r} has run; known: {known}.")
        pipeline_ids = [found.id]
    else:
        pipeline_ids = [p.id for p in store.list_pipelines()]
    selected: list[RunRecord] = []
    for pid in pipeline_ids:
        runs = store.list_runs(pid, where)
        selected.extend(runs[keep_last or 0 :])
    selected = [r for r in selected if r.status is not ExecutionStatus.RUNNING]
    if keep_tags:
        tags = store.tags_of_runs([r.id for r in selected]) if selected else {}
        selected = [
            r
            for r in selected
            if not any(tags.get(r.id, {}).get(k) == v for k, v in keep_tags.items())
        ]
    return sorted(selected, key=lambda r: (r.start_time, r.id))


def _size(artifacts: ArtifactStore, uri: str) -> int:
    try:
        return sum(size for _, size in artifacts.files(uri))
    except OSError:  # already gone: not an error
        return 0


def remove_runs(
    store: SQLMetadataStore,
    artifacts: ArtifactStore,
    run_ids: Iterable[int],
    *,
    dry_run: bool = False,
    known_uris: Callable[[], set[str] | None] | None = None,
    grace: timedelta = DEFAULT_GRACE,
) -> Removal:
    """Delete the runs ``run_ids`` (records, then files), keeping whatever kept runs need.

    Given ``known_uris`` (every URI that any metadata store writing into this artifact store
    names, or None when that cannot be known), also remove folders no record names and
    staging leftovers older than ``grace``.
    """
    wanted = set(run_ids)
    names = {r.id: r.name for r in store.runs_by_ids(sorted(wanted))}
    plan = store.plan_pruning(wanted)
    removal = _describe(store, artifacts, plan, dry_run)
    if not dry_run:
        art_files, log_files = set(removal.artifacts), set(removal.logs)
        for attempt in range(_REPLANS):
            try:
                store.execute_pruning(plan)
                break
            except PlanChanged as e:
                # A live run took up something being deleted: plan again what is left.
                if attempt == _REPLANS - 1:
                    raise PlanChanged(
                        f"Live runs kept taking up what was being deleted ({e}); what is "
                        "deleted so far is consistent. Run the deletion again."
                    ) from e
                plan = store.plan_pruning({r.id for r in store.runs_by_ids(sorted(wanted))})
                again = _describe(store, artifacts, plan, dry_run)
                art_files |= set(again.artifacts)
                log_files |= set(again.logs)
                removal.kept = again.kept
                removal.refused = sorted({*removal.refused, *again.refused})
        left = {r.id for r in store.runs_by_ids(sorted(wanted))}
        removal.runs = sorted(names[r] for r in wanted - left if r in names)
        # Files after the records, and only those no record names any more.
        still_named = store.stored_uris()
        removal.artifacts = sorted(f for f in art_files if f[0] not in still_named)
        removal.logs = sorted(f for f in log_files if f[0] not in still_named)
        for uri, _ in (*removal.artifacts, *removal.logs):
            artifacts.remove(uri)
    known = known_uris() if known_uris is not None else None
    if known is not None:
        busy = [r[1] for r in store.running_runs()]
        cutoff = time.time() - grace.total_seconds()
        removal.orphans = artifacts.leftovers(known, cutoff, busy)
        if not dry_run:
            for uri, _ in removal.orphans:
                artifacts.remove(uri)
    return removal


def _describe(
    store: SQLMetadataStore, artifacts: ArtifactStore, plan: Pruning, dry_run: bool
) -> Removal:
    removal = Removal(dry_run=dry_run, steps=len(plan.steps))
    names = {r.id: r.name for r in store.runs_by_ids(sorted(plan.runs | plan.partial_runs))}
    removal.runs = sorted(names[r] for r in plan.runs)
    if plan.running:
        removal.running = sorted(r.name for r in store.runs_by_ids(sorted(plan.running)))
    if plan.kept_steps:
        for s in store.steps_by_ids(sorted(plan.kept_steps)):
            removal.kept.setdefault(names[s.run_id], []).append(s.name)
    for kind, uris in (("artifacts", sorted(plan.artifacts.values())), ("logs", sorted(plan.logs))):
        listed = getattr(removal, kind)
        for uri in uris:
            try:
                artifacts.check(uri)
            except ArtifactNotFoundError:
                removal.refused.append(uri)  # the record goes; files outside are not ours
                continue
            listed.append((uri, _size(artifacts, uri)))
    return removal
