"""Deleting runs without breaking what is kept: the plan, and its execution in batches.

A selected run's step is kept (with its run record) when a kept step still needs it: a kept
step consumed or reused one of its artifacts, or was cached from it. Kept steps keep all their
links, so the closure runs upstream until nothing more is needed; lineage and ``step explain``
of what is kept stay whole, and no cache lookup can ever return a step without its outputs.

Execution: records first, one transaction per batch of runs, files afterwards (by the
caller). Each batch re-checks, inside its transaction, that no step outside the plan has
started to use what it deletes (a live run's cache hit); if one has, the plan is made again.
A step whose artifacts a later batch still links to is finished in the next round.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from runstack.exceptions import StoreError
from runstack.metadata_stores._connection import SQLConnection
from runstack.metadata_stores._lazy import LazyModule
from runstack.models import ExecutionStatus

if TYPE_CHECKING:
    import sqlalchemy as sa

    from runstack.metadata_stores import _schema as t
else:
    sa = LazyModule("sqlalchemy")
    t = LazyModule("runstack.metadata_stores._schema")

_CHUNK = 400  # ids per IN list
_BATCH_RUNS = 50  # runs per delete transaction


class PlanChanged(StoreError):
    """A step outside the plan started using something the plan deletes."""


@dataclass
class Pruning:
    """What deleting some runs removes: whole runs, steps of runs kept for their needed
    steps, artifact rows (``id -> uri``) and step log folders."""

    runs: set[int] = field(default_factory=set)  # run records removed
    steps: set[int] = field(default_factory=set)  # step records removed
    kept_steps: set[int] = field(default_factory=set)  # selected runs' steps still needed
    partial_runs: set[int] = field(default_factory=set)  # selected runs kept for those steps
    artifacts: dict[int, str] = field(default_factory=dict)  # artifact id -> uri removed
    logs: set[str] = field(default_factory=set)  # logs_uri of removed steps
    running: set[int] = field(default_factory=set)  # selected but running: never deleted
    step_run: dict[int, int] = field(default_factory=dict)


def fetch_rows(conn: sa.Connection, q: Any) -> list[Any]:
    return list(conn.execute(q))


def log_uris(logs_uri: str | None, execution: Any) -> set[str]:
    """The log folders of a step: its last attempt's and those of earlier attempts."""
    found = {logs_uri} if logs_uri else set()
    for attempt in (execution or {}).get("attempts", []):
        if attempt.get("logs_uri"):
            found.add(attempt["logs_uri"])
    return found


def id_chunks(ids: Iterable[int]) -> Iterable[list[int]]:
    ids = sorted(ids)
    for i in range(0, len(ids), _CHUNK):
        yield ids[i : i + _CHUNK]


class RunPruning(SQLConnection):
    """Plans and executes deleting runs' records; files are the caller's to remove after."""

    def plan_pruning(self, run_ids: Iterable[int]) -> Pruning:
        """What deleting ``run_ids`` removes and keeps (read only; a few queries per 400 runs)."""
        plan = Pruning()
        with self._read() as conn:
            selected: set[int] = set()
            for ids in id_chunks(set(run_ids)):
                q = sa.select(t.runs.c.id, t.runs.c.status).where(t.runs.c.id.in_(ids))
                for rid, status in fetch_rows(conn, q):
                    if status == ExecutionStatus.RUNNING.value:
                        plan.running.add(rid)
                    else:
                        selected.add(rid)
            cached_from: dict[int, int | None] = {}
            logs: dict[int, set[str]] = {}
            for ids in id_chunks(selected):
                q = sa.select(
                    t.steps.c.id,
                    t.steps.c.run_id,
                    t.steps.c.cached_from_step_id,
                    t.steps.c.logs_uri,
                    t.steps.c.execution,
                ).where(t.steps.c.run_id.in_(ids))
                for sid, rid, source, log, execution in fetch_rows(conn, q):
                    plan.step_run[sid] = rid
                    cached_from[sid] = source
                    logs[sid] = log_uris(log, execution)
            mine = set(plan.step_run)
            produced: dict[int, int] = {}  # artifact -> producing step (of the selected runs)
            uris: dict[int, str] = {}
            links: dict[int, set[int]] = {}  # selected step -> artifacts it links to
            needed: set[int] = set()  # selected steps that something outside needs
            for ids in id_chunks(mine):
                a = t.artifacts
                # An inline artifact (0008) has no files: nothing at its URI to remove.
                made = sa.select(a.c.id, a.c.producer_step_id, a.c.uri, a.c.inline_data.is_(None))
                rows = fetch_rows(conn, made.where(a.c.producer_step_id.in_(ids)))
                for aid, sid, uri, has_files in rows:
                    produced[aid] = sid
                    if has_files:
                        uris[aid] = uri
                for link in (t.step_inputs, t.step_outputs):
                    q = sa.select(link.c.step_id, link.c.artifact_id).where(link.c.step_id.in_(ids))
                    for sid, aid in fetch_rows(conn, q):
                        links.setdefault(sid, set()).add(aid)
                # Steps outside the selection cached from a selected step.
                q = sa.select(t.steps.c.id, t.steps.c.cached_from_step_id).where(
                    t.steps.c.cached_from_step_id.in_(ids)
                )
                needed.update(source for sid, source in fetch_rows(conn, q) if sid not in mine)
            for ids in id_chunks(produced):
                for link in (t.step_inputs, t.step_outputs):
                    q = sa.select(link.c.step_id, link.c.artifact_id).where(
                        link.c.artifact_id.in_(ids)
                    )
                    needed.update(
                        produced[aid] for sid, aid in fetch_rows(conn, q) if sid not in mine
                    )
        # Close upstream: a kept step keeps what it links to and what it was cached from.
        frontier = list(needed)
        while frontier:
            sid = frontier.pop()
            if sid in plan.kept_steps:
                continue
            plan.kept_steps.add(sid)
            upstream = [produced.get(aid) for aid in links.get(sid, ())] + [cached_from.get(sid)]
            frontier.extend(p for p in upstream if p in mine and p not in plan.kept_steps)
        plan.steps = mine - plan.kept_steps
        plan.partial_runs = {plan.step_run[s] for s in plan.kept_steps}
        plan.runs = selected - plan.partial_runs
        plan.artifacts = {
            aid: uris[aid] for aid, sid in produced.items() if sid in plan.steps and aid in uris
        }
        plan.logs = {log for sid in plan.steps for log in logs.get(sid, ())}
        return plan

    def stored_uris(self) -> set[str]:
        """Every URI a record names: artifact folders and step log folders."""
        with self._read() as conn:
            found = set(conn.execute(sa.select(t.artifacts.c.uri)).scalars())
            q = sa.select(t.steps.c.logs_uri, t.steps.c.execution).where(
                sa.or_(t.steps.c.logs_uri.is_not(None), t.steps.c.execution.is_not(None))
            )
            for log, execution in fetch_rows(conn, q):
                found |= log_uris(log, execution)
        return found

    def execute_pruning(self, plan: Pruning) -> None:
        """Delete the plan's records, one transaction per batch of runs; raises
        ``PlanChanged`` (nothing of that batch deleted) when a step outside the plan has
        started using something it deletes."""
        by_run: dict[int, list[int]] = {}
        for sid in plan.steps:
            by_run.setdefault(plan.step_run[sid], []).append(sid)
        runs = sorted(set(by_run) | plan.runs)
        remaining = set(plan.steps)
        for _round in range(4):
            for i in range(0, len(runs), _BATCH_RUNS):
                batch = runs[i : i + _BATCH_RUNS]
                steps = [s for r in batch for s in by_run.get(r, []) if s in remaining]
                whole = [r for r in batch if r in plan.runs]
                delete = functools.partial(self._delete_batch, plan=plan, steps=steps, whole=whole)
                try:
                    remaining -= self._transact(delete)
                except sa.exc.IntegrityError as e:
                    # A live run linked to a row of this batch as it was deleted.
                    raise PlanChanged(str(e.orig)) from e
            if not remaining:
                return
        raise PlanChanged(
            f"{len(remaining)} step record(s) could not be deleted: runs kept taking them up. "
            "Nothing is broken; run the deletion again."
        )

    def _delete_batch(
        self, conn: sa.Connection, plan: Pruning, steps: Sequence[int], whole: Sequence[int]
    ) -> set[int]:
        """One batch: unlink ``steps``, delete what nothing links to any more; returns the
        steps deleted (the others wait for a later batch that still links to them)."""
        if steps:
            # Something outside the plan began to use a step or artifact deleted here?
            for ids in id_chunks(steps):
                q = sa.select(t.steps.c.id).where(t.steps.c.cached_from_step_id.in_(ids))
                if any(sid not in plan.steps for sid in conn.execute(q).scalars()):
                    raise PlanChanged("a step was cached from a step being deleted")
            produced = [
                aid
                for ids in id_chunks(steps)
                for aid in conn.execute(
                    sa.select(t.artifacts.c.id).where(t.artifacts.c.producer_step_id.in_(ids))
                ).scalars()
            ]
            for ids in id_chunks(produced):
                for link in (t.step_inputs, t.step_outputs):
                    users = conn.execute(
                        sa.select(link.c.step_id).where(link.c.artifact_id.in_(ids))
                    ).scalars()
                    if any(sid not in plan.steps for sid in users):
                        raise PlanChanged("an artifact being deleted was taken up meanwhile")
            for ids in id_chunks(steps):
                # Never a cache hit again, even if a crash stops the deletion half-way.
                conn.execute(
                    t.steps.update()
                    .where(t.steps.c.id.in_(ids))
                    .values(cache_key=None, cached_from_step_id=None)
                )
                for table in (t.step_parameters, t.step_inputs, t.step_outputs):
                    conn.execute(table.delete().where(table.c.step_id.in_(ids)))
            a = t.artifacts
            unlinked = [
                ~sa.exists().where(link.c.artifact_id == a.c.id)
                for link in (t.step_inputs, t.step_outputs)
            ]
            for ids in id_chunks(produced):
                conn.execute(a.delete().where(a.c.id.in_(ids), *unlinked))
            # MySQL cannot name the table it deletes from in a subquery: ask first.
            blocked: set[int] = set()
            for ids in id_chunks(steps):
                blocked.update(
                    conn.execute(
                        sa.select(t.artifacts.c.producer_step_id).where(
                            t.artifacts.c.producer_step_id.in_(ids)
                        )
                    ).scalars()
                )
                # Steps of later batches still cached from these (cleared when theirs runs).
                blocked.update(
                    conn.execute(
                        sa.select(t.steps.c.cached_from_step_id).where(
                            t.steps.c.cached_from_step_id.in_(ids)
                        )
                    ).scalars()
                )
            deletable = [s for s in steps if s not in blocked]
            for ids in id_chunks(deletable):
                conn.execute(t.steps.delete().where(t.steps.c.id.in_(ids)))
        else:
            deletable = []
        if whole:
            busy = set(
                conn.execute(
                    sa.select(t.steps.c.run_id).where(t.steps.c.run_id.in_(list(whole)))
                ).scalars()
            )
            done = [r for r in whole if r not in busy]
            if done:
                conn.execute(t.run_tags.delete().where(t.run_tags.c.run_id.in_(done)))
                conn.execute(t.runs.delete().where(t.runs.c.id.in_(done)))
        return set(deletable)
