"""History browsing costs a constant number of SQL statements, whatever the number of runs.

Statements are counted with a ``before_cursor_execute`` listener on the store's engine and,
for the hot reads that go straight through the DB-API, the store's ``statement_hooks``. On
SQLite runstack sends ``BEGIN`` itself; those are not queries and are not counted.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from runstack.metadata_stores import SQLMetadataStore
from runstack.models import ExecutionStatus, NewArtifact, StepResult
from runstack.pipelines import pipeline
from runstack.repository import Repository
from runstack.steps import BaseStepConfig, Output, StepContext, step
from store_support import StatementCounter


class Cfg(BaseStepConfig):
    multiplier: int = 1


@step
def step_1() -> Output(output_int=int, output_float=float):
    return 7, 0.1


@step(enable_cache=False)
def step_2(config: Cfg, a: int, b: float) -> Output(multiplied_output_int=int, other=float):
    return a * config.multiplier, b


@step
def step_3(context: StepContext, value: int) -> int:
    """Runs the seed's history scan inside the run; returns the statements it cost."""
    history = context.metadata_store
    with StatementCounter(history.store) as counter:
        values = [
            run.get_step("step_2").outputs["multiplied_output_int"].read()
            for run in history.get_pipeline("seed_pipeline").runs
        ]
    assert value in values
    return counter.queries


@pipeline
def seed_pipeline(first, second, third):
    a, b = first()
    x, _ = second(a, b)
    third(x)


def _run(multiplier: int) -> None:
    seed_pipeline(step_1(), step_2(Cfg(multiplier=multiplier)), step_3()).run()


def _seed_scan(repo: Repository) -> tuple[list[int], int]:
    with StatementCounter(repo.active_stack.metadata_store) as counter:
        values = [
            run.get_step("step_2").outputs["multiplied_output_int"].read()
            for run in repo.get_pipeline("seed_pipeline").runs
        ]
    return values, counter.queries


def test_seed_scan_costs_the_same_for_2_and_20_runs(repo: Repository) -> None:
    for m in range(2):
        _run(m)
    values, few = _seed_scan(repo)
    assert values == [0, 7]
    for m in range(2, 20):
        _run(m)
    values, many = _seed_scan(repo)
    assert values == [7 * m for m in range(20)]
    # pipeline lookup, run ids, steps in slot step_2 (none: it is slot second's entrypoint),
    # steps running step_2, their output with its artifact
    assert few == many == 5


def test_seed_scan_inside_a_step_is_constant_too(repo: Repository) -> None:
    for m in range(12):
        _run(m)
    pipe = repo.get_pipeline("seed_pipeline")
    costs = [run.get_step("step_3").output.read() for run in pipe.runs]
    # The current run joins the listing with its steps so far: a few more, but never O(runs).
    assert max(costs) <= 6 and costs[1] == costs[-1]


def test_listing_runs_touches_no_run_twice(repo: Repository) -> None:
    for m in range(5):
        _run(m)
    pipe = repo.get_pipeline("seed_pipeline")
    with StatementCounter(repo.active_stack.metadata_store) as counter:
        runs = pipe.runs
        _ = [(r.name, r.status, r.start_time, r.get_step_names()) for r in runs]
        _ = [s.parameters for r in runs for s in r.steps]
        _ = [r.get_step("step_1").outputs["output_int"].uri for r in runs]
    # run ids, run records (on the first name), steps, step_1 outputs
    assert counter.queries == 4, counter.statements


def _fill(store: SQLMetadataStore, n: int) -> None:
    """n runs of one two-step pipeline, written straight to the store (fast)."""
    start = datetime(2024, 1, 1, tzinfo=timezone.utc)
    for i in range(n):
        t = start + timedelta(seconds=i)
        run = store.create_run("big", f"big-{i:04d}", t)
        for pos, name in enumerate(("load", "train")):
            store.record_step(
                StepResult(
                    run_id=run.id,
                    name=name,
                    entrypoint_name=name,
                    position=pos,
                    status=ExecutionStatus.COMPLETED,
                    parameters={"lr": i / 10} if name == "train" else {},
                    start_time=t,
                    end_time=t,
                    new_outputs=(NewArtifact("x", f"/nowhere/{i}/{name}", "builtins.int", "m"),),
                )
            )
        store.finish_run(run.id, ExecutionStatus.COMPLETED, t)


def test_whole_history_of_600_runs_is_read_in_constant_queries(repo: Repository) -> None:
    store = repo.active_stack.metadata_store
    _fill(store, 600)  # above the batch size: steps and outputs are fetched by pipeline
    pipe = repo.get_pipeline("big")
    with StatementCounter(store) as counter:
        uris = [run.get_step("train").outputs["x"].uri for run in pipe.runs]
    assert len(uris) == 600 and uris[-1] == "/nowhere/599/train"
    # run ids, train of every run, its output x of every run (what reading a value needs:
    # a scan reading values never loads the URIs), the rest of those records (for the URIs)
    assert counter.queries == 4
    with StatementCounter(store) as counter:
        assert pipe.latest_run.name == "big-0599"
        assert [r.name for r in pipe.get_runs(parameters={"train.lr": 12.3})] == ["big-0123"]
        page = pipe.get_runs(newest_first=True, limit=10, offset=20)
        assert [r.name for r in page][:2] == ["big-0579", "big-0578"]
        assert [s.name for s in page[0].steps] == ["load", "train"]
    assert counter.queries == 4
