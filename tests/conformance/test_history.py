"""History recorded by real pipeline runs reads back the same on SQLite, PostgreSQL and MySQL."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from conformance_pipelines import constant, make_first_pipeline, other_pipeline

from runstack.exceptions import (
    AmbiguousOutputError,
    DuplicateRunNameError,
    OutputNotFoundError,
    RunNotFoundError,
    StepExecutionError,
    StepNotFoundError,
)
from runstack.models import ExecutionStatus
from runstack.repository import Repository

COMPLETED, FAILED, CACHED = (
    ExecutionStatus.COMPLETED,
    ExecutionStatus.FAILED,
    ExecutionStatus.CACHED,
)


def test_pipelines_are_listed_by_first_run(team: Repository) -> None:
    make_first_pipeline().run(run_name="first-1")
    other_pipeline(only=constant()).run(run_name="other-1")
    make_first_pipeline().run(run_name="first-2")
    assert [p.name for p in team.get_pipelines()] == ["first_pipeline", "other_pipeline"]
    assert [p.name for p in team.get_pipelines(stack_key="team")] == [
        "first_pipeline",
        "other_pipeline",
    ]


def test_runs_are_oldest_first_and_found_by_name(team: Repository) -> None:
    for name in ("charlie", "alpha", "bravo"):
        make_first_pipeline().run(run_name=name)
    pipeline = team.get_pipeline("first_pipeline")
    assert [r.name for r in pipeline.runs] == ["charlie", "alpha", "bravo"]
    assert pipeline.get_run_names() == ["charlie", "alpha", "bravo"]
    starts = [r.start_time for r in pipeline.runs]
    assert starts == sorted(starts) and all(s.tzinfo is not None for s in starts)
    run = pipeline.get_run("alpha")
    assert (run.name, run.status, run.pipeline_name) == ("alpha", COMPLETED, "first_pipeline")
    assert run.end_time >= run.start_time
    assert run.get_step_names() == ["step_1", "step_2", "step_3"]
    # Across a listing, a step is found by slot or by (unambiguous) entrypoint name alike.
    assert [r.get_step("my_second_step").name for r in pipeline.runs] == ["step_2"] * 3
    assert [r.get_step("step_3").entrypoint_name for r in pipeline.runs] == ["my_third_step"] * 3
    with pytest.raises(StepNotFoundError, match="no step 'step_9'"):
        pipeline.runs[0].get_step("step_9")
    with pytest.raises(RunNotFoundError, match=r"'alph'.*Did you mean 'alpha'"):
        pipeline.get_run("alph")


def test_duplicate_run_names_are_refused_and_names_are_exact(team: Repository) -> None:
    make_first_pipeline().run(run_name="nightly")
    with pytest.raises(DuplicateRunNameError, match="'nightly' already exists"):
        make_first_pipeline().run(run_name="nightly")
    # Names compare exactly on every backend (MySQL's default collation would say equal).
    make_first_pipeline().run(run_name="Nightly")
    make_first_pipeline().run(run_name="nächtlich-夜间-🌙")
    pipeline = team.get_pipeline("first_pipeline")
    assert pipeline.get_run_names() == ["nightly", "Nightly", "nächtlich-夜间-🌙"]
    assert pipeline.get_run("nächtlich-夜间-🌙").status is COMPLETED


def test_failed_runs_are_recorded_with_the_error(team: Repository) -> None:
    make_first_pipeline(3).run(run_name="good")
    with pytest.raises(StepExecutionError, match="step_2"):
        make_first_pipeline(4, fail=True).run(run_name="bad")
    pipeline = team.get_pipeline("first_pipeline")
    bad = pipeline.get_run("bad")
    assert bad.status is FAILED and "asked to fail" in bad.error
    step = bad.get_step("step_2")
    assert step.status is FAILED
    assert "RuntimeError" in step.traceback and "asked to fail with multiplier 4" in step.error
    assert bad.get_step_names() == ["step_1", "step_2"]
    assert pipeline.latest_run.name == "bad"
    assert pipeline.latest_successful_run.name == "good"
    assert [r.name for r in pipeline.get_runs(status="failed")] == ["bad"]


def test_cached_steps_reuse_outputs(team: Repository) -> None:
    make_first_pipeline().run(run_name="one")
    make_first_pipeline().run(run_name="two")
    pipeline = team.get_pipeline("first_pipeline")
    first, second = (
        pipeline.get_run("one").get_step("step_1"),
        pipeline.get_run("two").get_step("step_1"),
    )
    assert first.status is COMPLETED and not first.is_cached
    assert second.status is CACHED and second.is_cached
    out = second.outputs["output_int"]
    assert out.is_cached and out.id == first.outputs["output_int"].id
    assert out.producer_step.id == first.id
    assert out.read() == 7
    # step_2 has caching off: it ran again.
    assert pipeline.get_run("two").get_step("step_2").status is COMPLETED


def test_outputs_by_name_and_position(team: Repository) -> None:
    make_first_pipeline(5).run(run_name="r")
    step = team.get_pipeline("first_pipeline").get_run("r").get_step("step_2")
    assert list(step.outputs) == ["multiplied_output_int", "multiplied_output_float"]
    assert step.outputs[0].id == step.outputs["multiplied_output_int"].id
    assert step.outputs[0].read() == 35
    assert step.outputs[1].read() == pytest.approx(0.5)
    assert step.parameters == {"multiplier": 5, "rate": 0.5, "fail": False}
    assert [i for i in step.inputs] == ["input_int", "input_float"]
    with pytest.raises(AmbiguousOutputError):
        _ = step.output
    with pytest.raises(OutputNotFoundError, match="multiplied_output_int"):
        step.outputs["multiplied_output"]
    assert step.entrypoint_name == "my_second_step"


def test_step_context_sees_earlier_runs_and_this_one(team: Repository) -> None:
    def verdict(run_name: str) -> tuple[bool, int]:
        step = team.get_pipeline("first_pipeline").get_run(run_name).get_step("step_3")
        return step.outputs["is_best"].read(), step.outputs["seen"].read()

    make_first_pipeline(5).run(run_name="five")
    assert verdict("five") == (True, 1)  # the current run's step_2 is already visible
    make_first_pipeline(2).run(run_name="two")
    assert verdict("two") == (False, 2)
    with pytest.raises(StepExecutionError):
        make_first_pipeline(9, fail=True).run(run_name="broken")
    make_first_pipeline(6).run(run_name="six")
    assert verdict("six") == (True, 3)  # the failed run has no step_2 output to compare


def test_filters_limits_and_latest(team: Repository) -> None:
    t0 = datetime.now(timezone.utc)
    for i, name in enumerate(["exp_a-1", "exp_a-2", "expXa-3", "base-4"]):
        make_first_pipeline(multiplier=i + 1, rate=0.25 if i % 2 else 1.0).run(run_name=name)
    with pytest.raises(StepExecutionError):
        make_first_pipeline(multiplier=9, fail=True).run(run_name="exp_a-fail")
    pipeline = team.get_pipeline("first_pipeline")

    def names(**filters: object) -> list[str]:
        return [r.name for r in pipeline.get_runs(**filters)]

    every = names()
    assert every == ["exp_a-1", "exp_a-2", "expXa-3", "base-4", "exp_a-fail"]
    # "_" is a literal in the prefix, not a LIKE wildcard.
    assert names(name_prefix="exp_a") == ["exp_a-1", "exp_a-2", "exp_a-fail"]
    assert names(name_prefix="exp_a", status="completed") == ["exp_a-1", "exp_a-2"]
    assert names(status=FAILED) == ["exp_a-fail"]
    assert names(parameters={"step_2.multiplier": 3}) == ["expXa-3"]
    assert names(parameters={"step_2.rate": 1}) == ["exp_a-1", "expXa-3"]  # 1 == 1.0
    assert names(parameters={"step_2.rate": 0.25, "step_2.multiplier": 4}) == ["base-4"]
    assert names(parameters={"step_2.fail": True}) == ["exp_a-fail"]
    assert names(parameters={"step_2.multiplier": 99}) == []
    assert names(parameters={"step_1.multiplier": 3}) == []  # another step's parameter
    runs = pipeline.runs
    assert names(started_after=runs[1].start_time, started_before=runs[3].start_time) == [
        "exp_a-2",
        "expXa-3",
    ]
    naive_utc = runs[3].start_time.astimezone(timezone.utc).replace(tzinfo=None)
    assert names(started_after=naive_utc) == ["base-4", "exp_a-fail"]
    assert names(started_before=t0) == []
    assert names(started_after=t0 - timedelta(hours=1)) == every
    assert names(limit=2) == every[:2]
    assert names(limit=2, offset=2) == every[2:4]
    assert names(newest_first=True, limit=2) == ["exp_a-fail", "base-4"]
    assert names(status="completed", newest_first=True, offset=1, limit=1) == ["expXa-3"]
    assert pipeline.latest_run.name == "exp_a-fail"
    assert pipeline.latest_successful_run.name == "base-4"
    # A run found through a filter browses like any other.
    (found,) = pipeline.get_runs(parameters={"step_2.multiplier": 2})
    assert found.get_step("step_2").outputs["multiplied_output_int"].read() == 14


def test_latest_run_of_a_pipeline_without_runs_of_that_status(team: Repository) -> None:
    with pytest.raises(StepExecutionError):
        make_first_pipeline(fail=True).run(run_name="only-failure")
    pipeline = team.get_pipeline("first_pipeline")
    assert pipeline.latest_run.name == "only-failure"
    with pytest.raises(RunNotFoundError, match="no completed runs"):
        _ = pipeline.latest_successful_run
