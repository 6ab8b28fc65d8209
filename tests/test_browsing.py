"""Browsing history: Repository -> pipelines -> runs -> steps -> outputs, and lookup errors."""

from __future__ import annotations

import copy
import pickle
import re
from typing import Any

import pytest

from runstack.exceptions import (
    AmbiguousOutputError,
    OutputNotFoundError,
    PipelineNotFoundError,
    RunNotFoundError,
    StepExecutionError,
    StepNotFoundError,
    StoreError,
)
from runstack.models import ExecutionStatus
from runstack.pipelines import pipeline
from runstack.post_execution import RunFilter
from runstack.repository import Repository
from runstack.steps import Output, step


@step
def numbers() -> Output(small=int, big=int):
    return 1, 100


@step
def add(a: int, b: int) -> int:
    return a + b


@step(enable_cache=False)
def fail_on(a: int, b: int) -> int:
    raise ValueError("no")


@pipeline
def adder(load, combine):
    small, big = load()
    combine(small, big)


@pipeline
def twice(load, first_add, second_add):
    small, big = load()
    first_add(small, big)
    second_add(big, small)


def test_pipelines_are_ordered_by_first_run(repo: Repository) -> None:
    twice(numbers(), add(), add()).run()
    adder(numbers(), add()).run()
    twice(numbers(), add(), add()).run()  # a later run does not move the pipeline
    assert [p.name for p in repo.get_pipelines()] == ["twice", "adder"]
    assert repo.get_pipeline("adder").name == "adder"
    assert repo.get_pipeline(pipeline_name="twice", stack_key="default").name == "twice"


def test_unknown_names_raise_key_errors_listing_what_exists(repo: Repository) -> None:
    adder(numbers(), add()).run(run_name="a-1")
    with pytest.raises(
        PipelineNotFoundError, match=r"'addr'.*Known pipelines: 'adder'.*Did you mean 'adder'"
    ) as info:
        repo.get_pipeline("addr")
    assert isinstance(info.value, KeyError)
    p = repo.get_pipeline("adder")
    with pytest.raises(RunNotFoundError, match="no run 'a-2'.*'a-1'"):
        p.get_run("a-2")
    run = p.get_run(run_name="a-1")
    with pytest.raises(StepNotFoundError, match="no step 'combin'.*Did you mean 'combine'"):
        run.get_step("combin")
    with pytest.raises(OutputNotFoundError, match="no output 'large'.*'small', 'big'"):
        run.get_step("load").outputs["large"]
    with pytest.raises(OutputNotFoundError, match="index 5 is out of range"):
        run.get_step("load").outputs[5]
    with pytest.raises(
        AmbiguousOutputError, match=r"has 2 outputs \(small, big\).*outputs\['<name>'\]"
    ):
        run.get_step("load").output
    with pytest.raises(KeyError):
        Repository().get_pipeline("nothing")


def test_empty_repository_has_no_pipelines(repo: Repository) -> None:
    assert repo.get_pipelines() == []
    with pytest.raises(KeyError, match="There are no pipelines yet"):
        repo.get_pipeline("first_pipeline")


def test_runs_are_chronological_and_steps_in_execution_order(repo: Repository) -> None:
    names = [twice(numbers(), add(), add()).run(run_name=f"run-{i}").name for i in range(3)]
    p = repo.get_pipeline("twice")
    assert [r.name for r in p.runs] == names
    assert [r.name for r in p.get_runs()] == names
    run = p.runs[-1]
    assert run.get_step_names() == ["load", "first_add", "second_add"]
    assert [s.name for s in run.steps] == ["load", "first_add", "second_add"]
    assert run.steps[0].outputs[0].read() == 1 and run.steps[0].outputs[1].read() == 100
    assert run.steps[0].outputs[-1].read() == 100


def test_get_step_by_entrypoint_name_only_when_unambiguous(repo: Repository) -> None:
    adder(numbers(), add()).run(run_name="one-add")
    twice(numbers(), add(), add()).run(run_name="two-adds")
    assert repo.get_pipeline("adder").get_run("one-add").get_step("add").name == "combine"
    run = repo.get_pipeline("twice").get_run("two-adds")
    with pytest.raises(
        StepNotFoundError, match=r"2 steps running 'add' \(slots \['first_add', 'second_add'\]\)"
    ):
        run.get_step("add")
    assert run.get_step("second_add").inputs["a"].read() == 100


def test_bad_run_filters_fail_where_they_are_written() -> None:
    with pytest.raises(StoreError, match="Unknown status 'done'.*completed"):
        RunFilter(status="done")
    with pytest.raises(StoreError, match="'<step>.<parameter>'.*got 'lr'"):
        RunFilter(parameters={"lr": 0.1})


def test_step_views_describe_the_execution(repo: Repository) -> None:
    adder(numbers(), add()).run(run_name="x")
    second = adder(numbers(), add()).run(run_name="y")
    combine = second.get_step("combine")
    assert combine.is_cached and combine.status is ExecutionStatus.CACHED
    assert combine.start_time <= combine.end_time and combine.duration >= 0
    assert combine.output.is_cached
    original = repo.get_pipeline("adder").get_run("x").get_step("combine")
    assert original.output.is_cached is False
    assert combine.cache_key == original.cache_key
    assert list(combine.inputs) == ["a", "b"]
    assert combine.run.name == "y"
    assert "combine" in repr(combine) and "x" in repr(repo.get_pipeline("adder").runs[0])


def test_latest_runs_and_filters(repo: Repository) -> None:
    adder(numbers(), add()).run(run_name="ok-1")
    with pytest.raises(StepExecutionError):
        adder(numbers(), fail_on()).run(run_name="bad-1")
    p = repo.get_pipeline("adder")
    assert p.latest_run.name == "bad-1"
    assert p.latest_successful_run.name == "ok-1"
    assert [r.name for r in p.get_runs(status="failed")] == ["bad-1"]
    assert [r.name for r in p.get_runs(name_prefix="ok")] == ["ok-1"]
    assert [r.name for r in p.get_runs(newest_first=True, limit=1)] == ["bad-1"]
    assert [r.name for r in p.get_runs(offset=1)] == ["bad-1"]
    # The same filters as one value; a filter and keywords together would be ambiguous.
    newest_failed = RunFilter(status="failed", newest_first=True, limit=5)
    assert [r.name for r in p.get_runs(newest_failed)] == ["bad-1"]
    assert newest_failed.status is ExecutionStatus.FAILED
    with pytest.raises(TypeError, match="not both"):
        p.get_runs(newest_failed, limit=1)
    failed = p.get_run("bad-1")
    assert failed.status is ExecutionStatus.FAILED
    # The seed pattern tolerates failed runs: the failed step has no outputs.
    with pytest.raises(KeyError):
        failed.get_step("combine").outputs["output"]


def test_history_scan_reads_every_run(repo: Repository) -> None:
    for i in range(12):
        adder(numbers(), add()).run(run_name=f"r{i:02d}")
    p = repo.get_pipeline("adder")
    values = [run.get_step("combine").outputs["output"].read() for run in p.runs]
    assert values == [101] * 12
    assert p.runs[0].name == "r00"
    # A scan's view holds part of its record: it pickles and copies as a whole one.
    scanned = [run.get_step("combine").outputs["output"] for run in p.runs][-1]
    alone = p.get_run("r11").get_step("combine").outputs["output"]
    for copied in (pickle.loads(pickle.dumps(scanned)), copy.deepcopy(scanned)):
        assert (copied.uri, copied.content_hash, copied.read()) == (
            alone.uri,
            alone.content_hash,
            101,
        )
    assert repr(scanned) == repr(alone)


def test_a_scan_across_a_listing_behaves_as_one_run_at_a_time(repo: Repository) -> None:
    """Steps found across a whole listing (loaded for every run at once, records decoded when
    used) answer exactly as steps of a run looked up alone."""
    twice(numbers(), add(), add()).run(run_name="t0")
    twice(numbers(), add(), add()).run(run_name="t1")
    p = repo.get_pipeline("twice")
    alone = p.get_run("t1").get_step("first_add")
    scanned = [run.get_step("first_add") for run in p.runs]
    assert [s.run.name for s in scanned] == ["t0", "t1"]
    last = scanned[-1]
    assert (last.id, last.name, last.entrypoint_name) == (alone.id, "first_add", "add")
    assert (last.status, last.start_time, last.parameters) == (
        alone.status,
        alone.start_time,
        alone.parameters,
    )
    assert last.parent_steps[0].name == "load"
    # Outputs by name, by position, listed, missing: as a lone step's.
    assert last.outputs["output"].read() == alone.outputs["output"].read() == 101
    assert last.outputs[0].uri == alone.outputs[0].uri and list(last.outputs) == ["output"]
    with pytest.raises(OutputNotFoundError, match=r"no output 'outptu'.*'output'"):
        last.outputs["outptu"]
    # Several steps running one entrypoint: an error naming the slots, in a listing too.
    with pytest.raises(StepNotFoundError, match=r"2 steps running 'add'"):
        [run.get_step("add") for run in p.runs]
    assert [r.get_step("numbers").outputs["big"].read() for r in p.runs] == [100, 100]
    # Runs listed by id decode their records when asked, for the whole listing at once.
    runs = p.runs
    assert [(r.name, r.status) for r in runs] == [("t0", "completed"), ("t1", "completed")]
    twice(numbers(), add(), add()).run(run_name="t2")
    runs = p.runs
    repo.delete_run("t2")  # nothing uses its records (t0's are kept: t1 and t2 reuse them)
    with pytest.raises(RunNotFoundError, match="deleted after it was listed"):
        _ = runs[2].name


def test_a_scanned_output_is_a_lone_steps_output(repo: Repository) -> None:
    """A scan reads each value with only what reading needs; the rest of each record (URI,
    producer, files) is loaded for the whole scan when first asked, and is what a step looked
    up alone shows."""
    twice(numbers(), add(), add()).run(run_name="t0")
    twice(numbers(), add(), add()).run(run_name="t1")  # load is reused from t0's cache
    p = repo.get_pipeline("twice")

    def described(a: Any) -> tuple[Any, ...]:
        return (a.id, a.uri, a.is_cached, a.producer_step.run.name, a.storage_format, repr(a))

    scanned = [run.get_step("load").outputs["big"] for run in p.runs]
    alone = [p.get_run(name).get_step("load").outputs["big"] for name in ("t0", "t1")]
    assert [a.read() for a in scanned] == [100, 100]
    assert [described(a) for a in scanned] == [described(a) for a in alone]
    assert [a.is_cached for a in scanned] == [False, True] and scanned[0].verify()
    # A run deleted after the listing: the rest of its output's record is gone, and says so.
    twice(numbers(), add(), add()).run(run_name="t2")
    outputs = [run.get_step("first_add").outputs["output"] for run in p.runs]
    repo.delete_run("t2")
    assert [o.read() for o in outputs] == [101, 101, 101]  # read before: kept, as before
    with pytest.raises(OutputNotFoundError, match=r"'output' of step #\d+ was deleted .* listed"):
        _ = outputs[2].uri
    assert outputs[1].uri == p.get_run("t1").get_step("first_add").outputs["output"].uri


def test_reading_with_another_type_or_materializer(repo: Repository) -> None:
    from runstack.materializers import BuiltInMaterializer

    adder(numbers(), add()).run(run_name="r")
    load = repo.get_pipeline("adder").get_run("r").get_step("load")
    small = load.outputs["small"]
    assert small.read() == 1
    assert small.read(materializer_class=BuiltInMaterializer) == 1
    assert small.read(output_data_type=float, materializer=BuiltInMaterializer) == 1
    assert small.producer_step.name == "load" and not small.is_cached


def test_sqlite_store_runs_in_wal_mode(repo: Repository) -> None:
    store = repo.active_stack.metadata_store
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_lookups_given_the_wrong_type_say_so(repo: Repository) -> None:
    """Issue 11: 22. Views and numbers used to reach the driver (SQL in the error)."""
    run = adder(numbers(), add()).run(run_name="typed")
    fresh = Repository()
    p = fresh.get_pipeline("adder")
    calls = [
        (lambda: p.get_run(run), "pass its name: 'typed'"),
        (lambda: fresh.get_pipeline(p), "pass its name: 'adder'"),
        (lambda: fresh.get_pipeline("adder", stack_key=p), "stack_key must be a name"),
        (lambda: fresh.get_pipelines(stack_key=3), "stack_key must be a name"),
        (lambda: run.get_step(3), "step name must be a name"),
        (lambda: fresh.get_stack("default").history.get_run(run), "pass its name"),
        (lambda: p.get_runs(limit="10"), "limit=...) takes an int"),
        (lambda: p.get_runs(parameters=[("add.x", 1)]), "takes a mapping"),
    ]
    for call, message in calls:
        with pytest.raises(TypeError, match=re.escape(message)):
            call()
    assert p.get_run(run_name="typed").name == "typed"  # the keyword form works
