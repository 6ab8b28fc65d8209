"""The store itself on every backend: time precision, schema versions, concurrent writers,
and the number of queries history browsing costs."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa
from conformance_pipelines import make_first_pipeline
from conformance_support import SERVERS, Backend

from runstack.exceptions import SchemaVersionError, StoreError
from runstack.metadata_stores import SQLMetadataStore
from runstack.metadata_stores._schema import SCHEMA_REVISION
from runstack.models import ExecutionStatus
from runstack.repository import Repository
from store_support import StatementCounter

WORKER = Path(__file__).parent / "_worker.py"


def test_start_times_keep_microseconds(store: SQLMetadataStore) -> None:
    base = datetime(2024, 5, 1, 12, 0, 0, 500_000, tzinfo=timezone.utc)
    # Created in the opposite order of their start times: only microseconds tell them apart.
    late = store.create_run("p", "late", base + timedelta(microseconds=2))
    early = store.create_run("p", "early", base + timedelta(microseconds=1))
    assert [r.name for r in store.list_runs(late.pipeline_id)] == ["early", "late"]
    got = store.get_run("late")
    assert got is not None and got.start_time == base + timedelta(microseconds=2)
    assert got.start_time.tzinfo is not None
    store.finish_run(
        early.id, ExecutionStatus.COMPLETED, base + timedelta(seconds=1, microseconds=7)
    )
    done = store.get_run("early")
    assert done is not None and done.end_time == base + timedelta(seconds=1, microseconds=7)


def test_newer_schema_is_refused_and_left_alone(store: SQLMetadataStore, backend: Backend) -> None:
    make_first_pipeline().run(run_name="before")
    with store.engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999'"))
    tables = sorted(sa.inspect(store.engine).get_table_names())
    store.dispose()

    with pytest.raises(SchemaVersionError) as info:
        SQLMetadataStore(backend.url)
    message = str(info.value)
    assert "'9999'" in message and f"latest {SCHEMA_REVISION!r}" in message
    assert "pip install -U runstack" in message and "nothing in the store was changed" in message

    engine = sa.create_engine(backend.url, poolclass=sa.NullPool)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar() == "9999"
        assert conn.execute(sa.text("SELECT name FROM runs")).scalars().all() == ["before"]
    assert sorted(sa.inspect(engine).get_table_names()) == tables


def test_a_fresh_database_gets_the_current_schema(store: SQLMetadataStore) -> None:
    with store.engine.connect() as conn:
        version = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
    assert version == SCHEMA_REVISION
    indexes = {i["name"] for i in sa.inspect(store.engine).get_indexes("runs")}
    assert {"ix_runs_pipeline_id_status_start_time", "ix_runs_start_time"} <= indexes
    # Opening it again leaves it as it is.
    SQLMetadataStore(store.url).dispose()
    with store.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar() == version


def test_reading_one_output_of_every_run_costs_constant_queries(team: Repository) -> None:
    """The historic-runs seed pattern: O(1) queries whatever the number of runs."""

    def scan() -> tuple[int, list[int]]:
        store = team.active_stack.metadata_store
        with StatementCounter(store) as counter:
            values = [
                run.get_step("step_2").outputs["multiplied_output_int"].read()
                for run in team.get_pipeline("first_pipeline", stack_key="team").runs
            ]
        return counter.queries, values

    for i in range(3):
        make_first_pipeline(multiplier=i).run(run_name=f"r{i}")
    few, values = scan()
    assert values == [0, 7, 14]
    for i in range(3, 12):
        make_first_pipeline(multiplier=i).run(run_name=f"r{i}")
    many, values = scan()
    assert values == [7 * i for i in range(12)]
    # get_pipeline, the run ids, step_2 of every run, its output of every run with artifacts.
    assert few == many == 4


def test_latest_run_and_get_run_are_single_queries(team: Repository) -> None:
    for i in range(3):
        make_first_pipeline(multiplier=i).run(run_name=f"r{i}")
    pipeline = team.get_pipeline("first_pipeline", stack_key="team")
    store = team.active_stack.metadata_store
    with StatementCounter(store) as counter:
        assert pipeline.latest_run.name == "r2"
        assert pipeline.latest_successful_run.name == "r2"
        assert pipeline.get_run("r1").name == "r1"
        assert len(pipeline.get_runs(parameters={"step_2.multiplier": 1}, limit=5)) == 1
    assert counter.queries == 4


@pytest.mark.slow
def test_concurrent_processes_record_every_run(team: Repository, tmp_path: Path) -> None:
    """4 processes open a fresh database at once (racing to migrate it), then write 5 runs each."""
    go = tmp_path / "go"
    workers = [
        subprocess.Popen(
            [sys.executable, str(WORKER), str(team.config_dir), f"w{w}", "5", str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in range(4)
    ]
    try:
        for proc in workers:  # every worker has opened (and migrated) the store
            line = proc.stdout.readline() if proc.stdout else ""
            assert line.strip() == "ready", proc.communicate(timeout=60)[1]
        go.touch()
        results = [proc.communicate(timeout=300) for proc in workers]
    finally:
        for proc in workers:
            if proc.poll() is None:
                proc.kill()
    for proc, (_out, err) in zip(workers, results, strict=True):
        assert proc.returncode == 0, err

    pipeline = team.get_pipeline("first_pipeline", stack_key="team")
    runs = pipeline.runs
    expected = {f"w{w}-{i}" for w in range(4) for i in range(5)}
    assert len(runs) == 20 and {r.name for r in runs} == expected
    assert all(r.status is ExecutionStatus.COMPLETED for r in runs)
    assert all(r.get_step_names() == ["step_1", "step_2", "step_3"] for r in runs)
    assert sorted(r.get_step("step_2").outputs[0].read() for r in runs) == sorted(
        7 * (i + 1) for _w in range(4) for i in range(5)
    )
    assert [r.start_time for r in runs] == sorted(r.start_time for r in runs)
    assert len(team.get_pipelines(stack_key="team")) == 1  # one pipeline row despite the race


@pytest.mark.parametrize("flavor", ["postgresql", "mysql", "mysqlclient"])
def test_connection_errors_name_the_server_but_not_the_password(flavor: str) -> None:
    url = sa.make_url(SERVERS[flavor]).set(password="s3cret-pw", port=1)  # nothing on port 1
    start = time.monotonic()
    with pytest.raises(StoreError, match="Cannot open the metadata store at") as info:
        SQLMetadataStore(url)
    assert "s3cret-pw" not in str(info.value) and ":***@" in str(info.value)
    assert time.monotonic() - start < 30


@pytest.mark.parametrize("backend", ["postgresql", "mysql", "mysqlclient"], indirect=True)
def test_a_deadlocked_write_is_run_again(store: SQLMetadataStore) -> None:
    """Two writers lock two rows in opposite orders; the server aborts one, which is retried."""
    start = datetime.now(timezone.utc)
    ids = [store.create_run("p", name, start).id for name in ("one", "two")]
    barrier = threading.Barrier(2, timeout=30)
    attempts = {"ab": 0, "ba": 0}

    def writer(key: str, first: int, second: int) -> None:
        def work(conn: sa.Connection) -> None:
            attempts[key] += 1
            for i, run_id in enumerate((first, second)):
                conn.execute(
                    sa.text("UPDATE runs SET error = :e WHERE id = :id"), {"e": key, "id": run_id}
                )
                if i == 0 and attempts[key] == 1:
                    barrier.wait()  # both hold their first row; each now wants the other's

        store._transact(work)

    threads = [
        threading.Thread(target=writer, args=("ab", ids[0], ids[1])),
        threading.Thread(target=writer, args=("ba", ids[1], ids[0])),
    ]
    errors: list[BaseException] = []
    for th in threads:
        th.run = _catching(th.run, errors)  # type: ignore[method-assign]
        th.start()
    for th in threads:
        th.join(60)
    assert not errors, errors
    assert sorted(attempts.values()) == [1, 2]  # exactly one was aborted and run again
    loser = "ab" if attempts["ab"] == 2 else "ba"
    assert {store.get_run(n).error for n in ("one", "two")} == {loser}  # type: ignore[union-attr]


def _catching(fn, errors):
    def run() -> None:
        try:
            fn()
        except BaseException as e:
            errors.append(e)

    return run


def test_a_step_and_the_running_rows_of_its_successors_are_recorded_together(
    store: SQLMetadataStore,
) -> None:
    from runstack.models import NewArtifact, StepResult

    when = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=timezone.utc)
    run = store.create_run("p", "r", when)

    def result(name: str, status: ExecutionStatus, **more: object) -> StepResult:
        return StepResult(
            run_id=run.id,
            name=name,
            entrypoint_name=name,
            position=0,
            status=status,
            parameters={},
            start_time=when,
            end_time=when,
            **more,  # type: ignore[arg-type]
        )

    running_a = store.start_step(result("a", ExecutionStatus.RUNNING))
    made = (NewArtifact("out", "/x/out", "builtins.int", "m.M", "h" * 32),)
    step_id, outputs, running = store.record_step_and_start(
        result("a", ExecutionStatus.COMPLETED, new_outputs=made, running_step_id=running_a),
        [result("b", ExecutionStatus.RUNNING), result("c", ExecutionStatus.RUNNING)],
    )
    assert outputs["out"].producer_step_id == step_id and outputs["out"].uri == "/x/out"
    steps = {s.name: s for s in store.steps_of_runs([run.id])}
    assert steps["a"].status is ExecutionStatus.COMPLETED and steps["a"].id == step_id
    assert [steps[n].id for n in ("b", "c")] == running
    assert {steps[n].status for n in ("b", "c")} == {ExecutionStatus.RUNNING}
    # All or nothing: a successor whose row cannot be written undoes the step's record too.
    with pytest.raises((StoreError, sa.exc.IntegrityError)):  # as record_step raises
        store.record_step_and_start(
            result("d", ExecutionStatus.COMPLETED, new_outputs=made),
            [result("b", ExecutionStatus.RUNNING)],  # (run, name) is taken: refused
        )
    assert "d" not in {s.name for s in store.steps_of_runs([run.id])}
