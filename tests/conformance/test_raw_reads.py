"""The hot history reads, written as plain SQL and run through the DB-API, return exactly the
records SQLAlchemy's typed columns give for the same rows, on every backend.

The reference reads below select whole tables through ``_schema`` with SQLAlchemy's own
DateTime and JSON decoding; any column name in the SQL text out of step with the schema, any
time parsed differently or JSON decoded otherwise, fails here.
"""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import sqlalchemy as sa

from runstack.metadata_stores import RunFilter, SQLMetadataStore
from runstack.metadata_stores import _schema as t
from runstack.metadata_stores._rows import artifact_record, readable_artifact
from runstack.models import (
    ArtifactLink,
    ArtifactRecord,
    ExecutionStatus,
    NewArtifact,
    RunRecord,
    StepRecord,
    StepResult,
)

UTC = timezone.utc
START = datetime(2024, 2, 29, 23, 59, 58, tzinfo=UTC)
# LIKE's wildcards and our escape character in names: a prefix must match them literally.
NAMES = ["a_1", "a%1", "ab!1", "a!b", "abc", "x-0"]
# The fields of an artifact's record a scan reads a value with (``readable_artifact``).
READABLE = ("id", "data_type", "materializer", "content_hash", "inline")


def _aware(dt: datetime | None) -> datetime | None:
    return None if dt is None else dt.replace(tzinfo=UTC)


def _fill(store: SQLMetadataStore) -> None:
    for i, name in enumerate(NAMES):
        # Whole seconds and microseconds: SQLite stores both as text, compared as text.
        at = START + timedelta(seconds=i, microseconds=0 if i % 2 else 123456)
        run = store.create_run("p", name, at, owner_host="h", owner_pid=7, tags={"key": name})
        for pos, step in enumerate(("load", "train")):
            store.record_step(
                StepResult(
                    run_id=run.id,
                    name=step,
                    entrypoint_name=f"{step}_fn",
                    position=pos,
                    status=ExecutionStatus.COMPLETED,
                    parameters={"lr": i / 10, "clip": math.inf} if step == "train" else {},
                    start_time=at,
                    end_time=at + timedelta(microseconds=5),
                    cache_key=f"k{i}{pos}",
                    cache_components={"code": {"x": i}, "nan": math.nan},
                    parent_step_names=("load",) if step == "train" else (),
                    new_outputs=(
                        NewArtifact(
                            "value",
                            f"/nowhere/{i}/{step}",
                            "builtins.int",
                            "m",
                            "h",
                            inline=b"7",
                            files={"data.json": 1},
                        ),
                        NewArtifact("other", f"/nowhere/{i}/{step}/o", "builtins.str", "m"),
                    ),
                    output_order=("value", "other"),
                    execution={"options": {"retries": i}},
                )
            )
        if i % 3 == 2:
            store.finish_run(run.id, ExecutionStatus.FAILED, at + timedelta(seconds=1), "boom")
        else:
            store.finish_run(run.id, ExecutionStatus.COMPLETED, at + timedelta(seconds=1))
    store.set_note(store.get_run("abc").id, "a note")  # type: ignore[union-attr]


def _runs(store: SQLMetadataStore) -> dict[int, RunRecord]:
    r = t.runs
    q = sa.select(r, t.pipelines.c.name.label("pname")).join(
        t.pipelines, t.pipelines.c.id == r.c.pipeline_id
    )
    with store.engine.connect() as conn:
        rows = conn.execute(q).mappings().all()
    return {
        m["id"]: RunRecord(
            m["id"],
            m["pipeline_id"],
            m["pname"],
            m["name"],
            ExecutionStatus(m["status"]),
            _aware(m["start_time"]),  # type: ignore[arg-type]
            _aware(m["end_time"]),
            m["error"],
            m["owner_host"],
            m["owner_pid"],
            _aware(m["heartbeat_at"]),
            m["owner_ns"],
            m["note"],
        )
        for m in rows
    }


def _steps(store: SQLMetadataStore, *, complete: bool) -> dict[int, StepRecord]:
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(t.steps)).mappings().all()
    return {
        m["id"]: StepRecord(
            m["id"],
            m["run_id"],
            m["name"],
            m["entrypoint_name"],
            m["position"],
            ExecutionStatus(m["status"]),
            m["parameters"],
            m["cache_key"],
            m["cached_from_step_id"],
            _aware(m["start_time"]),  # type: ignore[arg-type]
            _aware(m["end_time"]),
            m["error"],
            m["traceback"] if complete else None,
            tuple(m["parent_step_names"]),
            m["role"],
            m["cache_components"] if complete else None,
            m["logs_uri"],
            complete,
            m["execution"] if complete else None,
        )
        for m in rows
    }


def _links(store: SQLMetadataStore, table: sa.Table) -> list[ArtifactLink]:
    a = t.artifacts
    q = (
        sa.select(table.c.step_id, table.c.name, table.c.position, a)
        .join(a, a.c.id == table.c.artifact_id)
        .order_by(table.c.step_id, table.c.position)
    )
    with store.engine.connect() as conn:
        rows = conn.execute(q).mappings().all()
    return [
        ArtifactLink(
            m["step_id"],
            m["name"],
            m["position"],
            ArtifactRecord(
                m["id"],
                m["uri"],
                m["data_type"],
                m["materializer"],
                m["producer_step_id"],
                m["content_hash"],
                m["storage_format"],
                None if m["inline_data"] is None else bytes(m["inline_data"]),
                m["files"],
            ),
        )
        for m in rows
    ]


def _same(got: Any, want: Any) -> None:
    # NaN != NaN: compare the reprs, which show every field and value.
    assert repr(got) == repr(want)


def test_run_step_and_artifact_records_match_sqlalchemys(store: SQLMetadataStore) -> None:
    _fill(store)
    runs = _runs(store)
    ordered = sorted(runs.values(), key=lambda r: (r.start_time, r.id))
    pid = ordered[0].pipeline_id
    _same(store.list_runs(pid), ordered)
    _same(store.list_runs(), ordered)
    _same(store.list_run_ids(pid), [r.id for r in ordered])
    _same(store.list_run_ids(pid, newest_first=True), [r.id for r in reversed(ordered)])
    _same(store.runs_by_ids([r.id for r in ordered]), sorted(ordered, key=lambda r: r.id))
    for r in ordered:
        _same(store.get_run(r.name), r)
        _same(store.get_run(r.name, pipeline_id=pid), r)
        _same(store.get_run_by_id(r.id), r)
    assert store.get_run("abc", pipeline_id=pid + 1) is None
    assert store.run_names(pid) == [r.name for r in ordered]
    [pipe] = store.list_pipelines()
    assert (pipe.id, pipe.name) == (pid, "p") and pipe.created_at.tzinfo is not None
    _same(store.get_pipeline("p"), pipe)
    assert store.tags_of_runs([r.id for r in ordered]) == {r.id: {"key": r.name} for r in ordered}

    full = _steps(store, complete=True)
    listed = _steps(store, complete=False)
    assert full and all(s.cache_components and "nan" in s.cache_components for s in full.values())
    for step_id, record in full.items():
        _same(store.get_step_by_id(step_id), record)
    by_run = sorted(listed.values(), key=lambda s: (s.run_id, s.position))
    _same(store.steps_of_runs([r.id for r in ordered]), by_run)
    _same(store.steps_of_runs(pipeline_id=pid), by_run)
    _same(store.steps_of_runs(pipeline_id=pid, name="train_fn"), by_run[1::2])
    _same(store.steps_of_runs([r.id for r in ordered], name="train_fn"), by_run[1::2])
    assert store.steps_of_runs([]) == []
    _same(store.steps_by_ids(sorted(listed)), [listed[i] for i in sorted(listed)])
    assert math.isinf(by_run[1].parameters["clip"])

    outputs = _links(store, t.step_outputs)
    _same(store.outputs_of_steps(sorted(listed)), outputs)
    train = [o for o in outputs if listed[o.step_id].name == "train"]
    _same(store.outputs_of_steps(pipeline_id=pid, step_name="train"), train)
    _same(store.inputs_of_steps(sorted(listed)), _links(store, t.step_inputs))

    # The scan: heads of one step of every run, then one output of those steps.
    ids = [r.id for r in ordered]
    for entrypoint, name in ((False, "train"), (True, "train_fn")):
        want = [(s.id, s.run_id, s.name)[: 3 if entrypoint else 2] for s in by_run[1::2]]
        assert (
            sorted(map(tuple, store.scan_steps(name, pipeline_id=pid, entrypoint=entrypoint)))
            == want
        )
        assert sorted(map(tuple, store.scan_steps(name, ids, entrypoint=entrypoint))) == want
    assert store.scan_steps("train", pipeline_id=pid, entrypoint=True) == []
    values = [o for o in train if o.name == "value"]
    readable = [  # what the scan reads a value with
        (o.step_id, *(getattr(o.artifact, f) for f in READABLE)) for o in values
    ]
    assert all(r[-1] is not None for r in readable)  # inline: the case the scan reads so
    for rows, readable_rows in (
        (
            store.scan_outputs(["train"], "value", pipeline_id=pid),
            store.scan_outputs(["train"], "value", pipeline_id=pid, readable=True),
        ),
        (
            store.scan_outputs(["train", "nothing"], "value", [r.id for r in ordered]),
            store.scan_outputs(
                ["train", "nothing"], "value", [r.id for r in ordered], readable=True
            ),
        ),
    ):
        _same(
            sorted((r[0], artifact_record(r, 1)) for r in rows),
            [(o.step_id, o.artifact) for o in values],
        )
        made = sorted(((r[0], readable_artifact(r, 1)) for r in readable_rows), key=lambda x: x[0])
        _same([(i, *(getattr(a, f) for f in READABLE)) for i, a in made], readable)
        for _, a in made:  # the rest is left unset, never made up
            for f in ("uri", "producer_step_id", "storage_format", "files"):
                with pytest.raises(AttributeError):
                    getattr(a, f)


@pytest.mark.parametrize(
    ("where", "keep"),
    [
        (RunFilter(name_prefix="a_"), lambda r: r.name.startswith("a_")),
        (RunFilter(name_prefix="a%"), lambda r: r.name.startswith("a%")),
        (RunFilter(name_prefix="a!"), lambda r: r.name.startswith("a!")),
        (RunFilter(name_prefix="ab!"), lambda r: r.name.startswith("ab!")),
        (RunFilter(status="failed"), lambda r: r.status is ExecutionStatus.FAILED),
        (RunFilter(tags={"key": "a%1"}), lambda r: r.name == "a%1"),
        (RunFilter(parameters={"train.lr": 0.2}), lambda r: r.name == "ab!1"),
        (
            RunFilter(parameters={"train.lr": 0.2, "train.clip": math.inf}),
            lambda r: r.name == "ab!1",
        ),
        (RunFilter(parameters={"train.lr": 0.2, "load.lr": 0.2}), lambda r: False),
        (RunFilter(started_after=START + timedelta(seconds=1)), lambda r: r.name != "a_1"),
        (
            RunFilter(started_before=START + timedelta(seconds=2, microseconds=123456)),
            lambda r: r.name in ("a_1", "a%1"),
        ),
        (RunFilter(started_before=START.replace(tzinfo=None)), lambda r: False),
    ],
)
def test_filters_select_what_they_say(store: SQLMetadataStore, where: RunFilter, keep: Any) -> None:
    _fill(store)
    ordered = sorted(_runs(store).values(), key=lambda r: (r.start_time, r.id))
    want = [r for r in ordered if keep(r)]
    _same(store.list_runs(None, where), want)
    assert store.count_runs(None, where) == len(want)
    _same(store.list_runs(None, replace(where, newest_first=True)), want[::-1])
    _same(store.list_runs(None, replace(where, limit=1, offset=1)), want[1:2])
    _same(store.list_runs(None, replace(where, offset=1)), want[1:])
    assert store.count_runs(None, replace(where, limit=1)) == len(want)
