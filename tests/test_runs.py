"""Running pipelines: recording, failures, output checks, caching, materializers, StepContext."""

from __future__ import annotations

import os
import re
from typing import Any

import pytest

from runstack.exceptions import (
    DefinitionError,
    DuplicateRunNameError,
    MaterializerError,
    StepExecutionError,
    StepOutputError,
)
from runstack.materializers import BaseMaterializer, BuiltInMaterializer
from runstack.models import ExecutionStatus
from runstack.pipelines import pipeline
from runstack.repository import Repository
from runstack.steps import BaseStepConfig, Output, StepContext, step


class Factor(BaseStepConfig):
    factor: int = 2


@step
def source() -> Output(value=int, label=str):
    return 21, "twenty-one"


@step
def double(value: int, config: Factor) -> int:
    return value * config.factor


@pipeline
def simple(first, second):
    value, _label = first()
    second(value)


def test_a_run_is_recorded_with_steps_parameters_and_outputs(repo: Repository) -> None:
    run = simple(source(), double(factor=3)).run(run_name="r1")
    assert run.name == "r1" and run.status is ExecutionStatus.COMPLETED
    assert run.start_time <= run.end_time
    first, second = run.steps
    assert (first.name, first.entrypoint_name) == ("first", "source")
    assert second.parameters == {"factor": 3}
    assert list(first.outputs) == ["value", "label"]
    assert first.outputs["label"].read() == "twenty-one"
    assert second.output.read() == 63
    assert second.inputs["value"].read() == 21
    assert second.input.uri == first.outputs["value"].uri
    assert [s.name for s in second.parent_steps] == ["first"]
    assert second.output.producer_step.name == "second"
    assert second.output.data_type == "builtins.int"
    assert second.output.materializer.endswith("BuiltInMaterializer")
    # A small built-in value is kept with its record: no folder at its URI.
    assert second.output.is_inline and not os.path.exists(second.output.uri)


def test_default_run_names_sort_by_time(repo: Repository) -> None:
    a = simple(source(), double()).run()
    b = simple(source(), double()).run()
    assert re.fullmatch(r"simple-\d{4}_\d\d_\d\d-\d\d_\d\d_\d\d_\d{6}", a.name)
    assert a.name < b.name
    assert repo.get_pipeline("simple").get_run_names() == [a.name, b.name]


def test_duplicate_run_name_is_refused_and_history_is_kept(repo: Repository) -> None:
    simple(source(), double()).run(run_name="nightly")
    with pytest.raises(
        DuplicateRunNameError, match="'nightly' already exists.*pass another run_name"
    ):
        simple(source(), double()).run(run_name="nightly")
    runs = repo.get_pipeline("simple").runs
    assert [r.name for r in runs] == ["nightly"]
    assert runs[0].get_step("second").output.read() == 42


class Boom(RuntimeError):
    pass


@step
def explode(value: int) -> int:
    raise Boom(f"cannot handle {value}")


def test_failing_step_marks_step_and_run_failed(repo: Repository) -> None:
    with pytest.raises(StepExecutionError) as info:
        simple(source(), explode()).run(run_name="bad")
    err = info.value
    assert isinstance(err.__cause__, Boom)
    assert "step 'second' (explode) of pipeline 'simple' in run 'bad' failed" in str(err).lower()
    assert "Boom: cannot handle 21" in str(err)
    assert (err.pipeline_name, err.run_name, err.step_name) == ("simple", "bad", "second")

    run = repo.get_pipeline("simple").get_run("bad")
    assert run.status is ExecutionStatus.FAILED
    assert "Boom" in run.error
    failed = run.get_step("second")
    assert failed.status is ExecutionStatus.FAILED
    assert failed.error == "Boom: cannot handle 21"
    assert "raise Boom" in failed.traceback
    assert len(failed.outputs) == 0
    assert run.get_step("first").status is ExecutionStatus.COMPLETED
    # A later run is unaffected and the failed step is not a cache entry.
    ok = simple(source(), double()).run()
    assert ok.status is ExecutionStatus.COMPLETED


def test_steps_after_a_failure_do_not_run(repo: Repository) -> None:
    @pipeline
    def three(a, b, c):
        c(b(a()[0]))

    with pytest.raises(StepExecutionError):
        three(source(), explode(), double()).run(run_name="stopped")
    assert repo.get_pipeline("three").get_run("stopped").get_step_names() == ["a", "b"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("return 1", "declares 2 outputs .* but returned one int"),
        ("return 1, 2, 3", "declares 2 outputs .* but returned 3 values"),
        ("return 'one', 2.0", "returned str for output 'a', declared as int"),
    ],
)
def test_wrong_outputs_are_clear_errors(repo: Repository, body: str, message: str) -> None:
    namespace: dict[str, Any] = {"Output": Output}
    exec(f"def bad() -> Output(a=int, b=float):\n    {body}", namespace)

    @pipeline
    def one(a):
        a()

    with pytest.raises(StepOutputError, match=message):
        one(step(namespace["bad"])()).run(run_name="wrong")
    assert repo.get_pipeline("one").get_run("wrong").get_step("a").status is ExecutionStatus.FAILED


def test_undeclared_output_and_int_for_float(repo: Repository) -> None:
    @step
    def chatty() -> None:
        return 5  # type: ignore[return-value]

    @step
    def whole() -> float:
        return 3

    @pipeline
    def one(a):
        a()

    with pytest.raises(StepOutputError, match="declares no outputs but returned int"):
        one(chatty()).run()
    assert one(whole()).run().steps[0].output.read() == 3


# --- caching ---------------------------------------------------------------------------


def test_unchanged_steps_are_cached_and_reuse_artifacts(repo: Repository) -> None:
    first = simple(source(), double()).run()
    second = simple(source(), double()).run()
    assert [s.is_cached for s in first.steps] == [False, False]
    assert [s.status for s in second.steps] == [ExecutionStatus.CACHED] * 2
    reused = second.get_step("second").output
    assert reused.is_cached and reused.read() == 42
    assert reused.uri == first.get_step("second").output.uri  # linked, nothing copied
    assert reused.producer_step.run.name == first.name
    assert first.get_step("second").output.is_cached is False


def test_changed_config_or_input_invalidates_the_cache(repo: Repository) -> None:
    simple(source(), double(factor=2)).run()
    changed = simple(source(), double(factor=5)).run()
    assert [s.is_cached for s in changed.steps] == [True, False]
    assert changed.get_step("second").output.read() == 105

    @step
    def other_source() -> Output(value=int, label=str):
        return 1, "one"

    new_input = simple(other_source(), double(factor=5)).run()
    assert [s.is_cached for s in new_input.steps] == [False, False]


def test_caching_can_be_turned_off(repo: Repository) -> None:
    @step(enable_cache=False)
    def fresh(value: int) -> int:
        return value + 1

    simple(source(), fresh()).run()
    again = simple(source(), fresh()).run()
    assert [s.is_cached for s in again.steps] == [True, False]

    @pipeline(enable_cache=False)
    def uncached(first, second):
        second(first()[0])

    uncached(source(), double()).run()
    assert [s.is_cached for s in uncached(source(), double()).run().steps] == [False, False]


def test_local_runs_steps_in_plan_order_around_cache_hits(repo: Repository) -> None:
    # Plan: root, hit (cached on the second run), free (ready from the start), after_hit.
    # A cache hit makes `after_hit` ready at once; the local orchestrator still takes `free`
    # first, as its plan position says.
    ran: list[str] = []

    @step
    def root() -> int:
        return 1

    @step
    def hit(value: int) -> int:
        return value + 1

    @step(enable_cache=False)
    def free() -> int:
        ran.append("free")
        return 0

    @step(enable_cache=False)
    def after(value: int) -> int:
        ran.append("after_hit")
        return value

    @pipeline
    def shaped(root_step, hit_step, free_step, after_step):
        cached = hit_step(root_step())
        free_step()
        after_step(cached)

    def run() -> Any:
        return shaped(root(), hit(), free(), after()).run()

    run()
    ran.clear()
    second = run()
    assert [s.is_cached for s in second.steps] == [True, True, False, False]
    assert ran == ["free", "after_hit"]
    by_id = sorted(second.steps, key=lambda s: s.id)
    assert [s.name for s in by_id] == ["root_step", "hit_step", "free_step", "after_step"]


def test_context_steps_run_every_time(repo: Repository) -> None:
    calls = []

    @step
    def look(context: StepContext, value: int) -> int:
        calls.append(value)
        return value

    simple(source(), look()).run()
    simple(source(), look()).run()
    assert calls == [21, 21]


# --- materializers ---------------------------------------------------------------------


class Point:
    def __init__(self, x: int, y: int) -> None:
        self.x, self.y = x, y


class PointMaterializer(BaseMaterializer):
    ASSOCIATED_TYPES = (Point,)

    def handle_input(self, data_type: type) -> Point:
        with self.artifact.open("point.txt", "r") as f:
            x, y = f.read().split(",")
        return data_type(int(x), int(y))

    def handle_return(self, data: Point) -> None:
        with self.artifact.open("point.txt", "w") as f:
            f.write(f"{data.x},{data.y}")


def test_user_materializer_is_registered_by_subclassing(repo: Repository) -> None:
    @step
    def make_point() -> Point:
        return Point(3, 4)

    @step
    def norm(p: Point) -> float:
        return (p.x**2 + p.y**2) ** 0.5

    @pipeline
    def geometry(a, b):
        b(a())

    run = geometry(make_point(), norm()).run()
    assert run.get_step("b").output.read() == 5.0
    artifact = run.get_step("a").output
    assert artifact.materializer.endswith("PointMaterializer")
    assert os.listdir(artifact.uri) == ["point.txt"]
    assert artifact.read().x == 3


class Unstorable:
    pass


def test_a_type_without_materializer_fails_before_running(repo: Repository) -> None:
    ran = []

    @step
    def first() -> int:
        ran.append(1)
        return 1

    @step
    def make() -> Unstorable:
        return Unstorable()

    @pipeline
    def p(a, b):
        a()
        b()

    with pytest.raises(DefinitionError, match="no materializer handles that type"):
        p(first(), make()).run()
    assert ran == []
    assert repo.get_pipelines() == []


def test_a_value_without_materializer_at_run_time(repo: Repository) -> None:
    @step
    def make() -> Any:
        return Unstorable()

    @pipeline
    def p(a):
        a()

    with pytest.raises(MaterializerError, match="is a .*Unstorable, and no materializer"):
        p(make()).run(run_name="any")
    step_view = repo.get_pipeline("p").get_run("any").get_step("a")
    assert step_view.status is ExecutionStatus.FAILED
    assert not any("partial" in name for _, dirs, _ in os.walk(repo.config_dir) for name in dirs)


class UpperMaterializer(BuiltInMaterializer):
    """Stores strings upper-cased, to show which materializer wrote an output."""

    ASSOCIATED_TYPES = ()

    def handle_return(self, data: str) -> None:
        super().handle_return(data.upper())


def test_per_output_materializer_override(repo: Repository) -> None:
    @pipeline
    def p(a):
        a()

    run = p(source().with_return_materializers({"label": UpperMaterializer})).run()
    outputs = run.steps[0].outputs
    assert outputs["label"].read() == "TWENTY-ONE"
    assert outputs["label"].materializer.endswith("UpperMaterializer")
    assert outputs["value"].materializer.endswith("BuiltInMaterializer")
    with pytest.raises(DefinitionError, match="has no output 'nope'"):
        source().with_return_materializers({"nope": UpperMaterializer})
    with pytest.raises(DefinitionError, match="must be a BaseMaterializer subclass"):
        source().with_return_materializers({"label": str})


def test_failed_materializer_leaves_no_partial_artifact(repo: Repository) -> None:
    class Broken(BuiltInMaterializer):
        ASSOCIATED_TYPES = ()

        def handle_return(self, data: Any) -> None:
            with self.artifact.open("half.json", "w") as f:
                f.write("{")
            raise OSError("disk full")

    @pipeline
    def p(a):
        a()

    with pytest.raises(MaterializerError, match="Broken failed to write output 'value'.*disk full"):
        p(source().with_return_materializers({"value": Broken})).run(run_name="half")
    leftovers = [os.path.join(d, f) for d, _, files in os.walk(repo.config_dir) for f in files]
    assert not any(f.endswith("half.json") for f in leftovers)
    assert repo.get_pipeline("p").get_run("half").status is ExecutionStatus.FAILED


# --- StepContext -----------------------------------------------------------------------


def test_step_context_sees_the_current_run_and_its_outputs(repo: Repository) -> None:
    seen: dict[str, Any] = {}

    @step
    def inspect_history(context: StepContext, value: int) -> Output(report=str):
        seen["step_name"] = context.step_name
        run = context.metadata_store.get_pipeline("simple").runs[-1]
        seen["run_status"] = run.status
        seen["steps_so_far"] = run.get_step_names()
        seen["first_output"] = run.get_step("first").outputs["value"].read()
        seen["uri"] = context.get_output_artifact_uri()
        seen["uri_named"] = context.get_output_artifact_uri("report")
        seen["materializer"] = type(context.get_output_materializer("report"))
        seen["pipelines"] = [p.name for p in context.metadata_store.get_pipelines()]
        with pytest.raises(KeyError, match="has no output 'nope'"):
            context.get_output_artifact_uri("nope")
        return "ok"

    run = simple(source(), inspect_history()).run()
    assert seen["step_name"] == "second"
    assert seen["run_status"] is ExecutionStatus.RUNNING
    # Finished steps, and the step itself recorded as running while it runs.
    assert seen["steps_so_far"] == ["first", "second"]
    assert seen["first_output"] == 21
    assert seen["uri"] == seen["uri_named"] == run.get_step("second").output.uri
    assert seen["materializer"] is BuiltInMaterializer
    assert seen["pipelines"] == ["simple"]


def test_run_name_must_be_text(repo: Repository) -> None:
    from runstack.exceptions import RunstackError

    with pytest.raises(RunstackError, match="run_name must be a non-empty string"):
        simple(source(), double()).run(run_name="  ")


def test_numpy_scalars_are_stored_as_the_declared_builtin(repo: Repository) -> None:
    import numpy as np

    @step
    def scalars() -> Output(count=int, mean=float, whole=float, ok=bool):
        return np.int64(3), np.float32(0.5), np.int32(2), np.bool_(True)

    @step
    def total(count: int, mean: float, whole: float, ok: bool) -> float:
        assert type(count) is int and type(mean) is float and type(ok) is bool
        return count + mean + whole

    @pipeline
    def numeric(s, t):
        t(*s())

    run = numeric(scalars(), total()).run()
    outputs = run.get_step("s").outputs
    assert [outputs[n].read() for n in ("count", "mean", "whole", "ok")] == [3, 0.5, 2.0, True]
    assert [type(outputs[n].read()) for n in ("count", "mean", "ok")] == [int, float, bool]
    assert outputs["count"].data_type == "builtins.int"
    assert run.get_step("t").output.read() == 5.5


def test_numpy_scalars_of_another_kind_are_still_refused(repo: Repository) -> None:
    import numpy as np

    @step
    def wrong() -> int:
        return np.float64(2.5)  # type: ignore[return-value]

    @pipeline
    def single(s):
        s()

    with pytest.raises(StepOutputError, match="returned float64 for output 'output'"):
        single(wrong()).run()
