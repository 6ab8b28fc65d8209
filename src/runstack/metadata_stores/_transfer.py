"""Records of runs out of one store and into another (``runstack run export|import``).

Rows travel as plain dicts of every column (datetimes as ISO text), so a bundle carries all
a run recorded, and columns added by later migrations travel without code here. On the way
in, ids are remapped, matching records already present are reused (importing twice adds
nothing), and a record present with different content is an error naming its run.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from runstack.exceptions import RunstackError
from runstack.metadata_stores._connection import SQLConnection
from runstack.metadata_stores._lazy import LazyModule
from runstack.metadata_stores._params import parameter_rows
from runstack.metadata_stores._pruning import fetch_rows, id_chunks
from runstack.models import ExecutionStatus

if TYPE_CHECKING:
    import sqlalchemy as sa

    from runstack.metadata_stores import _schema as t
else:
    sa = LazyModule("sqlalchemy")
    t = LazyModule("runstack.metadata_stores._schema")

TABLES = ("runs", "steps", "artifacts", "step_inputs", "step_outputs")


class BundleError(RunstackError):
    """A bundle that cannot be imported as it is (clash, tampering, unsafe contents)."""


def _to_json(table: sa.Table, row: Any) -> dict[str, Any]:
    out = {}
    for c in table.columns:
        value = row[c.name]
        if isinstance(value, datetime):
            value = value.isoformat()
        elif value is not None and isinstance(c.type, sa.LargeBinary):
            # An inline artifact's value (0008) travels in the records, as base64.
            value = base64.b64encode(bytes(value)).decode("ascii")
        out[c.name] = value
    return out


def _from_json(table: sa.Table, row: Mapping[str, Any]) -> dict[str, Any]:
    """A row for ``table`` from a bundle: only columns this schema has; times parsed."""
    out = {}
    for c in table.columns:
        if c.name not in row:
            continue
        value = row[c.name]
        if value is not None and isinstance(c.type, sa.DateTime):
            value = datetime.fromisoformat(value)
        elif value is not None and isinstance(c.type, sa.LargeBinary):
            value = base64.b64decode(value)
        out[c.name] = value
    return out


class RunTransfer(SQLConnection):
    """Reads the records a bundle carries and writes a bundle's records in."""

    def export_records(self, run_ids: Iterable[int]) -> dict[str, Any]:
        """Every row runs ``run_ids`` need: their runs, steps, links and artifacts, plus the
        steps (and their runs, marked ``partial``) that produced artifacts they consumed or
        reused, up the lineage until nothing more is needed."""
        wanted = set(run_ids)
        steps: dict[int, dict[str, Any]] = {}
        artifacts: dict[int, dict[str, Any]] = {}
        links: dict[str, list[dict[str, Any]]] = {"step_inputs": [], "step_outputs": []}
        with self._read() as conn:
            frontier: set[int] = set()
            for ids in id_chunks(wanted):
                q = sa.select(t.steps).where(t.steps.c.run_id.in_(ids))
                for row in conn.execute(q).mappings():
                    if row["status"] == ExecutionStatus.RUNNING.value:
                        raise BundleError(
                            f"Run #{row['run_id']} is still running; export it once it ends."
                        )
                    steps[row["id"]] = _to_json(t.steps, row)
                    frontier.add(row["id"])
            while frontier:
                arts: set[int] = set()
                producers = {
                    src
                    for sid in frontier
                    if (src := steps[sid]["cached_from_step_id"]) is not None and src not in steps
                }
                for ids in id_chunks(frontier):
                    for table in (t.step_inputs, t.step_outputs):
                        q = sa.select(table).where(table.c.step_id.in_(ids))
                        for row in conn.execute(q).mappings():
                            links[table.name].append(_to_json(table, row))
                            arts.add(row["artifact_id"])
                for ids in id_chunks(arts - set(artifacts)):
                    q = sa.select(t.artifacts).where(t.artifacts.c.id.in_(ids))
                    for row in conn.execute(q).mappings():
                        artifacts[row["id"]] = _to_json(t.artifacts, row)
                        if row["producer_step_id"] not in steps:
                            producers.add(row["producer_step_id"])
                frontier = set()
                for ids in id_chunks(producers - set(steps)):
                    q = sa.select(t.steps).where(t.steps.c.id.in_(ids))
                    for row in conn.execute(q).mappings():
                        steps[row["id"]] = _to_json(t.steps, row)
                        frontier.add(row["id"])
            run_ids_all = {s["run_id"] for s in steps.values()} | wanted
            runs = []
            for ids in id_chunks(run_ids_all):
                q = (
                    sa.select(t.runs, t.pipelines.c.name.label("pipeline"))
                    .join(t.pipelines, t.pipelines.c.id == t.runs.c.pipeline_id)
                    .where(t.runs.c.id.in_(ids))
                )
                for row in conn.execute(q).mappings():
                    run = _to_json(t.runs, row) | {"pipeline": row["pipeline"]}
                    run["partial"] = row["id"] not in wanted
                    runs.append(run)
            tags: dict[int, dict[str, str]] = {}
            for ids in id_chunks(run_ids_all):
                q = sa.select(t.run_tags).where(t.run_tags.c.run_id.in_(ids))
                for row in conn.execute(q).mappings():
                    tags.setdefault(row["run_id"], {})[row["key"]] = row["value"]
        for run in runs:
            run["tags"] = tags.get(run["id"], {})
        return {
            "runs": sorted(runs, key=lambda r: r["id"]),
            "steps": sorted(steps.values(), key=lambda s: s["id"]),
            "artifacts": sorted(artifacts.values(), key=lambda a: a["id"]),
            "step_inputs": links["step_inputs"],
            "step_outputs": links["step_outputs"],
        }

    # -- import ----------------------------------------------------------------------------

    def plan_import(self, records: Mapping[str, Any]) -> ImportPlan:
        """Which of a bundle's records this store already holds (read only); a run held with
        different content is a ``BundleError`` naming it."""
        with self._read() as conn:
            return _match(conn, records)

    def import_records(
        self, records: Mapping[str, Any], uris: Mapping[int, str], logs: Mapping[str, str]
    ) -> ImportPlan:
        """Insert the bundle's records this store lacks, in one transaction: artifacts at
        ``uris`` (bundle artifact id -> new URI, files already written), log folders renamed
        by ``logs``. Returns the final matching."""

        def work(conn: sa.Connection) -> ImportPlan:
            plan = _match(conn, records)  # again: another import may have run meanwhile
            if set(plan.new_artifacts) - set(uris):
                raise BundleError("The store changed during the import; run it again.")
            _insert(conn, records, plan, uris, logs)
            return plan

        try:
            return self._transact(work)
        except sa.exc.IntegrityError as e:
            raise BundleError(
                f"Another process recorded the same runs during the import ({e.orig}); run "
                "the import again: what is already there is skipped."
            ) from e


@dataclass
class ImportPlan:
    """Bundle ids -> ids of matching records already in the store, and what is new."""

    runs: dict[int, int] = field(default_factory=dict)
    steps: dict[int, int] = field(default_factory=dict)
    artifacts: dict[int, int] = field(default_factory=dict)
    new_runs: list[int] = field(default_factory=list)
    new_steps: list[int] = field(default_factory=list)
    new_artifacts: list[int] = field(default_factory=list)


def _clash(name: str, why: str) -> BundleError:
    return BundleError(
        f"Run {name!r} already exists in this store with different content ({why}); nothing "
        "was imported. Delete or rename one of them (`runstack run delete`), or import into "
        "another stack."
    )


def _match(conn: sa.Connection, records: Mapping[str, Any]) -> ImportPlan:
    plan = ImportPlan()
    artifacts = {a["id"]: a for a in records["artifacts"]}
    outputs: dict[int, dict[str, int]] = {}
    for link in records["step_outputs"]:
        outputs.setdefault(link["step_id"], {})[link["name"]] = link["artifact_id"]
    steps_of: dict[int, list[dict[str, Any]]] = {}
    for s in records["steps"]:
        steps_of.setdefault(s["run_id"], []).append(s)
    for run in records["runs"]:
        found = conn.execute(
            sa.select(
                t.runs.c.id,
                t.pipelines.c.name,
                t.runs.c.start_time,
                t.runs.c.status,
            )
            .join(t.pipelines, t.pipelines.c.id == t.runs.c.pipeline_id)
            .where(t.runs.c.name == run["name"])
        ).first()
        bundle_steps = steps_of.get(run["id"], [])
        if found is None:
            plan.new_runs.append(run["id"])
            plan.new_steps.extend(s["id"] for s in bundle_steps)
            continue
        rid, pipeline, start, status = found
        if pipeline != run["pipeline"]:
            raise _clash(run["name"], f"of pipeline {pipeline!r}, not {run['pipeline']!r}")
        if start != datetime.fromisoformat(run["start_time"]):
            raise _clash(run["name"], f"started at {start}, not {run['start_time']}")
        if not run["partial"] and status != run["status"]:
            raise _clash(run["name"], f"{status}, not {run['status']}")
        plan.runs[run["id"]] = rid
        held = {
            name: (sid, st, key)
            for sid, name, st, key in fetch_rows(
                conn,
                sa.select(
                    t.steps.c.id, t.steps.c.name, t.steps.c.status, t.steps.c.cache_key
                ).where(t.steps.c.run_id == rid),
            )
        }
        extra = set(held) - {s["name"] for s in bundle_steps}
        if not run["partial"] and extra:
            # (Fewer steps is fine: a partial run imported earlier is completed.)
            raise _clash(run["name"], f"it has step(s) {sorted(extra)} the bundle lacks")
        held_out: dict[int, dict[str, tuple[int, str | None]]] = {}
        if held:
            so = t.step_outputs
            q = (
                sa.select(so.c.step_id, so.c.name, so.c.artifact_id, t.artifacts.c.content_hash)
                .join(t.artifacts, t.artifacts.c.id == so.c.artifact_id)
                .where(so.c.step_id.in_([v[0] for v in held.values()]))
            )
            for sid, name, aid, digest in fetch_rows(conn, q):
                held_out.setdefault(sid, {})[name] = (aid, digest)
        for s in bundle_steps:
            if s["name"] not in held:
                plan.new_steps.append(s["id"])
                continue
            sid, st, key = held[s["name"]]
            mine = {n: artifacts[a]["content_hash"] for n, a in outputs.get(s["id"], {}).items()}
            theirs = {n: d for n, (_, d) in held_out.get(sid, {}).items()}
            if (st, key) != (s["status"], s["cache_key"]) or mine != theirs:
                raise _clash(run["name"], f"step {s['name']!r} differs")
            plan.steps[s["id"]] = sid
            for n, a in outputs.get(s["id"], {}).items():
                plan.artifacts[a] = held_out[sid][n][0]
    plan.new_artifacts = [a for a in artifacts if a not in plan.artifacts]
    return plan


def _remap_logs(step: dict[str, Any], logs: Mapping[str, str]) -> None:
    if step.get("logs_uri"):
        step["logs_uri"] = logs.get(step["logs_uri"], step["logs_uri"])
    execution = step.get("execution")
    if execution:
        for attempt in execution.get("attempts", []):
            if attempt.get("logs_uri"):
                attempt["logs_uri"] = logs.get(attempt["logs_uri"], attempt["logs_uri"])


def _insert(
    conn: sa.Connection,
    records: Mapping[str, Any],
    plan: ImportPlan,
    uris: Mapping[int, str],
    logs: Mapping[str, str],
) -> None:
    runs = {r["id"]: r for r in records["runs"]}
    steps = {s["id"]: s for s in records["steps"]}
    for bid in plan.new_runs:
        run = runs[bid]
        pid = conn.execute(
            sa.select(t.pipelines.c.id).where(t.pipelines.c.name == run["pipeline"])
        ).scalar()
        if pid is None:
            pid = conn.execute(
                t.pipelines.insert().values(
                    name=run["pipeline"], created_at=datetime.fromisoformat(run["start_time"])
                )
            ).inserted_primary_key[0]  # type: ignore[index]
        row = _from_json(t.runs, run)
        row.pop("id")
        # Not this machine's process: crash detection must not look at the exporter's pid.
        row.update(pipeline_id=pid, owner_host=None, owner_pid=None, owner_ns=None)
        rid = conn.execute(t.runs.insert().values(**row)).inserted_primary_key[0]  # type: ignore[index]
        plan.runs[bid] = rid
        if run.get("tags"):
            conn.execute(
                t.run_tags.insert(),
                [{"run_id": rid, "key": k, "value": v} for k, v in run["tags"].items()],
            )
    for bid in sorted(plan.new_steps):  # sources (cached_from) always precede their users
        step = dict(steps[bid])
        _remap_logs(step, logs)
        row = _from_json(t.steps, step)
        row.pop("id")
        row["run_id"] = plan.runs[step["run_id"]]
        source = step.get("cached_from_step_id")
        row["cached_from_step_id"] = plan.steps.get(source) if source is not None else None
        decision = (row.get("cache_components") or {}).get("decision") or {}
        if isinstance(decision.get("step_id"), int):
            decision["step_id"] = plan.steps.get(decision["step_id"])
        sid = conn.execute(t.steps.insert().values(**row)).inserted_primary_key[0]  # type: ignore[index]
        plan.steps[bid] = sid
        if row.get("parameters"):
            conn.execute(
                t.step_parameters.insert(),
                parameter_rows(sid, row["run_id"], row["name"], row["parameters"]),
            )
    for bid in plan.new_artifacts:
        artifact = next(a for a in records["artifacts"] if a["id"] == bid)
        row = _from_json(t.artifacts, artifact)
        row.pop("id")
        row.update(uri=uris[bid], producer_step_id=plan.steps[artifact["producer_step_id"]])
        plan.artifacts[bid] = conn.execute(t.artifacts.insert().values(**row)).inserted_primary_key[
            0
        ]  # type: ignore[index]
    new_steps = set(plan.new_steps)
    for table in (t.step_inputs, t.step_outputs):
        rows = [
            {
                "step_id": plan.steps[link["step_id"]],
                "name": link["name"],
                "position": link["position"],
                "artifact_id": plan.artifacts[link["artifact_id"]],
            }
            for link in records[table.name]
            if link["step_id"] in new_steps
        ]
        if rows:
            conn.execute(table.insert(), rows)
