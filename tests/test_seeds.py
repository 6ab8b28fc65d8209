"""The code samples of the product documents (shared/seeds), run as written (zenml -> runstack)."""

from __future__ import annotations

import os
import re
import runpy
from pathlib import Path

import pandas as pd
import pytest

from runstack.repository import Repository

SEEDS = Path(__file__).parent / "seeds"
ROOT = Path(__file__).resolve().parents[1]


def find_shared_seeds(root: Path = ROOT, env: dict[str, str] | None = None) -> Path | None:
    """The product documents: ``$RUNSTACK_SEEDS``, else ``shared/seeds`` inside the checkout
    or beside it (how CI and the workspace lay them out); None when there are none."""
    env = os.environ if env is None else env
    if env.get("RUNSTACK_SEEDS"):
        return Path(env["RUNSTACK_SEEDS"])
    for candidate in (root / "shared" / "seeds", root.parent / "shared" / "seeds"):
        if (candidate / "fetching-historic-runs.md").is_file():
            return candidate
    return None


SHARED_SEEDS = find_shared_seeds()


def _python_blocks(markdown: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", markdown.read_text(), re.S)


def test_the_seeds_are_found_inside_beside_or_from_the_environment(tmp_path: Path) -> None:
    for place in (tmp_path / "a" / "main" / "shared", tmp_path / "b" / "shared"):
        (place / "seeds").mkdir(parents=True)
        (place / "seeds" / "fetching-historic-runs.md").write_text("")
    assert find_shared_seeds(tmp_path / "a" / "main", {}) == tmp_path / "a/main/shared/seeds"
    assert find_shared_seeds(tmp_path / "b" / "main", {}) == tmp_path / "b/shared/seeds"
    assert find_shared_seeds(tmp_path / "c", {"RUNSTACK_SEEDS": "/x"}) == Path("/x")
    assert find_shared_seeds(tmp_path / "c", {}) is None


def test_seed_copies_are_verbatim() -> None:
    """The samples run here are the product document's, word for word. The document is
    vendored beside them (tests/seeds), so this runs in every clone; where the workspace's
    shared/seeds is found too, the vendored copy must still be that document."""
    vendored = SEEDS / "fetching-historic-runs.md"
    if SHARED_SEEDS is not None:
        assert vendored.read_text() == (SHARED_SEEDS / vendored.name).read_text()
    blocks = _python_blocks(vendored)
    assert (SEEDS / "historic_runs_third_step.py").read_text() == blocks[0].replace(
        "zenml", "runstack"
    )
    assert (SEEDS / "historic_runs.py").read_text() == blocks[1].replace("zenml", "runstack")


def test_historic_runs_example_decides_against_recorded_history(repo: Repository) -> None:
    for _ in range(6):
        runpy.run_path(str(SEEDS / "historic_runs.py"), run_name="seed_example")

    pipeline = repo.get_pipeline("first_pipeline")
    runs = pipeline.runs
    assert len(runs) == 6
    assert all(r.status.value == "completed" for r in runs)
    best_so_far = 0
    for run in runs:
        value = run.get_step("step_2").outputs["multiplied_output_int"].read()
        best_so_far = max(best_so_far, value)
        decision = run.get_step("step_3").output.read()
        # step_3 sees every run up to and including its own (the current run is visible).
        assert decision is (value >= best_so_far), (run.name, value, best_so_far)
        # step_1 is cached after the first run; step_2 has caching off; step_3 takes a context.
        assert run.get_step("step_2").is_cached is False
        assert run.get_step("step_3").is_cached is False
    assert [r.get_step("step_1").is_cached for r in runs] == [False] + [True] * 5
    assert {r.get_step("step_1").outputs["output_int"].read() for r in runs} == {7}


def test_third_step_snippet_handles_first_run_and_missing_outputs(repo: Repository) -> None:
    namespace = runpy.run_path(str(SEEDS / "historic_runs_third_step.py"))
    my_third_step = namespace["my_third_step"]
    from runstack.pipelines import pipeline
    from runstack.steps import Output, step

    @step
    def produce() -> Output(value=int):
        return 5

    @pipeline
    def first_pipeline(step_1, step_3):
        step_3(step_1())

    run = first_pipeline(step_1=produce(), step_3=my_third_step()).run()
    # No run has a "step_2": every lookup raises KeyError, which the snippet tolerates.
    assert run.get_step("step_3").output.read() is True


def _seed_history(repo: Repository) -> None:
    from runstack.pipelines import pipeline
    from runstack.steps import Output, step

    @step
    def load() -> Output(df=pd.DataFrame, rows=int):
        df = pd.DataFrame({"x": [1.0, 2.0, 4.0], "label": ["a", "b", "a"]})
        return df, len(df)

    @step
    def some_step(df: pd.DataFrame) -> Output(output_name=int):
        return int(df["x"].sum())

    @pipeline
    def training(importer, scorer):
        df, _rows = importer()
        scorer(df)

    training(importer=load(), scorer=some_step()).run(run_name="training-1")
    training(importer=load(), scorer=some_step()).run(run_name="training-2")


def test_post_execution_workflow_page(repo: Repository, capsys: pytest.CaptureFixture[str]) -> None:
    _seed_history(repo)

    # --- the page's samples, with their `...` placeholders filled in ---
    from runstack.repository import Repository

    repo = Repository()

    # get all pipelines from all stacks
    pipelines = repo.get_pipelines()

    # now you can get pipelines by index
    pipeline_x = pipelines[-1]

    # or get one pipeline by name and/or stack key
    pipeline_x = repo.get_pipeline(pipeline_name="training", stack_key="default")

    runs = pipeline_x.runs  # all runs of a pipeline chronologically ordered

    # get the last run by index, runs are ordered by execution time in ascending order
    run = runs[-1]
    assert run.name == "training-2"

    # or get a specific run by name
    run = pipeline_x.get_run(run_name="training-2")

    steps = run.steps  # all steps of a pipeline
    step = steps[0]
    print(step.entrypoint_name)
    assert capsys.readouterr().out == "load\n"

    assert run.get_step(name="scorer").entrypoint_name == "some_step"
    step = run.get_step(name="some_step")  # the entrypoint name works too

    # The outputs of a step
    # if there are multiple outputs they are accessible by name
    output = step.outputs["output_name"]
    assert output.read() == 7

    # if one output, use the `.output` property instead
    output = step.output

    # will read the value into memory
    assert output.read() == 7


def test_post_execution_draft_page(repo: Repository) -> None:
    _seed_history(repo)
    from runstack.materializers import (
        PandasMaterializer,
        SchemaMaterializer,
        StatisticsMaterializer,
    )

    pipelines = repo.get_pipelines()  # get all pipelines from all stacks
    assert [p.name for p in pipelines] == ["training"]
    pipeline = repo.get_pipeline(pipeline_name="training", stack_key="default")
    runs = pipeline.get_runs()  # all runs of a pipeline chronlogically ordered
    run = runs[-1]  # latest run
    steps = run.steps
    step = steps[0]
    assert step.name == "importer"
    output = step.outputs[0]  # get outputs

    df = output.read(materializer=PandasMaterializer)  # get data
    assert list(df["x"]) == [1.0, 2.0, 4.0]
    stats = output.read(materializer=StatisticsMaterializer)  # get stats
    assert stats["x"].mean == pytest.approx(7 / 3)
    assert stats["x"].count == 3 and stats["label"].top_values == {"a": 2, "b": 1}
    schema = output.read(materializer=SchemaMaterializer)  # get schema
    assert schema.names == ["x", "label"]
    assert "double" in schema["x"].type

    # will get you the value from the original materializer used in the pipeline
    assert output.read().equals(df)


def test_name_samples_define_pipeline_and_step_names(repo: Repository) -> None:
    from runstack.pipelines import pipeline
    from runstack.steps import step

    @pipeline()
    def this_is_the_pipeline_name(): ...

    @step
    def this_is_the_step_name(): ...

    assert this_is_the_pipeline_name.NAME == "this_is_the_pipeline_name"
    assert this_is_the_step_name.NAME == "this_is_the_step_name"
    this_is_the_pipeline_name().run()
    assert repo.get_pipeline("this_is_the_pipeline_name").runs[0].steps == []
