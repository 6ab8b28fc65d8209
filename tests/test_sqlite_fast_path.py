"""SQLite's per-step writes skip SQLAlchemy Core; they must store exactly what Core would."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import sqlalchemy as sa

from runstack.metadata_stores import SQLMetadataStore
from runstack.metadata_stores import _schema as t
from runstack.models import ExecutionStatus, NewArtifact, StepResult


def _result(run_id: int, name: str) -> StepResult:
    when = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=timezone.utc)
    return StepResult(
        run_id=run_id,
        name=name,
        entrypoint_name="train",
        position=1,
        status=ExecutionStatus.COMPLETED,
        parameters={"lr": 0.1, "layers": [64, 32], "name": "ünï", "none": None},
        start_time=when,
        end_time=when,
        cache_key="k" * 64,
        cache_components={"code": {"step": "abc"}, "decision": {"outcome": "miss"}},
        new_outputs=(NewArtifact("model", "/a/model", "builtins.dict", "m.M", "h" * 32),),
        output_order=("model",),
        parent_step_names=("load",),
        role="trainer",
        error=None,
        traceback=None,
    )


def _stored_rows(store: SQLMetadataStore, step_id: int) -> list[tuple[object, ...]]:
    with store.engine.connect() as conn:
        step = conn.execute(sa.select(t.steps).where(t.steps.c.id == step_id)).one()
        raw = conn.exec_driver_sql("SELECT * FROM steps WHERE id = ?", (step_id,)).one()
        params = conn.execute(
            sa.select(t.step_parameters.c.name, t.step_parameters.c.value)
            .where(t.step_parameters.c.step_id == step_id)
            .order_by(t.step_parameters.c.name)
        ).all()
    # Everything but the ids, as SQLAlchemy reads it and as SQLite holds it on disk.
    return [tuple(step)[2:], tuple(raw)[2:], *[tuple(p) for p in params]]


def test_fast_path_stores_what_core_stores(tmp_path: Path) -> None:
    store = SQLMetadataStore(f"sqlite:///{tmp_path / 'm.db'}")
    run = store.create_run("p", "r", datetime.now(timezone.utc))
    fast_id, fast_outputs = store.record_step(_result(run.id, "a"))
    fast_path, store._sqlite_inserts = store._sqlite_inserts, None  # force SQLAlchemy Core
    core_id, core_outputs = store.record_step(_result(run.id, "b"))
    store._sqlite_inserts = fast_path

    fast_rows, core_rows = _stored_rows(store, fast_id), _stored_rows(store, core_id)
    assert fast_rows[0][0] == "a" and core_rows[0][0] == "b"
    assert fast_rows[0][1:] == core_rows[0][1:]  # decoded values
    assert fast_rows[1][1:] == core_rows[1][1:]  # bytes on disk
    assert fast_rows[2:] == core_rows[2:]  # parameter index rows
    assert store.get_step_by_id(fast_id).start_time == store.get_step_by_id(core_id).start_time
    assert fast_outputs["model"].uri == core_outputs["model"].uri == "/a/model"
    links = store.outputs_of_steps([fast_id, core_id])
    assert [(link.step_id, link.name) for link in links] == [(fast_id, "model"), (core_id, "model")]
    store.dispose()


def test_fast_path_starts_and_finishes_runs_as_core_does(tmp_path: Path) -> None:
    store = SQLMetadataStore(f"sqlite:///{tmp_path / 'm.db'}")
    when = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=timezone.utc)

    def start_and_finish(name: str, pipeline: str) -> int:
        run = store.create_run(
            pipeline, name, when, owner_host="h", owner_pid=7, owner_ns="ns", tags={"k": "ü"}
        )
        store.finish_run(run.id, ExecutionStatus.FAILED, when, error="boom")
        return run.id

    fast_ids = [start_and_finish("a", "p"), start_and_finish("b", "p")]  # new, then found
    fast_path, store._sqlite_inserts = store._sqlite_inserts, None  # force SQLAlchemy Core
    core_ids = [start_and_finish("c", "q"), start_and_finish("d", "q")]
    store._sqlite_inserts = fast_path

    def stored(run_id: int) -> tuple[object, ...]:
        with store.engine.connect() as conn:
            raw = conn.exec_driver_sql("SELECT * FROM runs WHERE id = ?", (run_id,)).one()
            tags = conn.exec_driver_sql(
                "SELECT key, value FROM run_tags WHERE run_id = ?", (run_id,)
            ).all()
        # Everything but the ids, the pipeline and the name, as SQLite holds it on disk.
        return (*tuple(raw)[3:], *map(tuple, tags))

    assert [stored(i) for i in fast_ids] == [stored(i) for i in core_ids]
    runs = {r.name: r for r in store.list_runs()}
    assert runs["a"].pipeline_id == runs["b"].pipeline_id != runs["c"].pipeline_id
    assert runs["c"].pipeline_id == runs["d"].pipeline_id
    store.dispose()


def test_a_failing_fast_write_leaves_nothing_behind(tmp_path: Path) -> None:
    store = SQLMetadataStore(f"sqlite:///{tmp_path / 'm.db'}")
    run = store.create_run("p", "r", datetime.now(timezone.utc))
    store.record_step(_result(run.id, "a"))
    try:
        store.record_step(_result(run.id, "a"))  # (run, name) is unique: the INSERT fails
    except Exception as e:
        assert "UNIQUE" in str(e)
    else:
        raise AssertionError("a duplicate step was recorded")
    with store.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(t.artifacts)).scalar() == 1
    store.dispose()
