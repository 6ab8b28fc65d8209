"""``runstack pipeline run FILE.py --config CONFIG.yaml`` and its agreement with with_config."""

from __future__ import annotations

import json
from pathlib import Path

from runstack.cli._pipeline_run import load_pipelines
from runstack.repository import Repository


def test_run_with_config_records_the_parameters(cli, repo, pipeline_file, isolated):
    config = isolated / "cfg.yaml"
    config.write_text("steps:\n  train:\n    parameters: {scale: 2.5}\n")
    result = cli("pipeline", "run", str(pipeline_file), "-c", str(config), "--json")
    run = json.loads(result.stdout)
    assert run["pipeline"] == "training" and run["status"] == "completed"
    step = Repository().get_pipeline("training").get_run(run["name"]).get_step("train")
    assert step.parameters == {"scale": 2.5, "fail": False}
    assert step.outputs["weights"].read().max() == 2.5
    # Progress went to stderr as plain lines (the runner is not a terminal).
    assert "✓ load: done in" in result.stderr and "✓ train: done in" in result.stderr
    assert f"Run {run['name']} completed" in result.stderr


def test_cli_config_and_with_config_from_python_agree(cli, repo, pipeline_file, isolated):
    config = isolated / "cfg.yaml"
    config.write_text(
        "steps:\n  load: {parameters: {rows: 3}}\n  train: {parameters: {scale: 4}}\n"
    )
    cli("pipeline", "run", str(pipeline_file), "-c", str(config), "--run-name", "from-cli")
    (pipeline,) = load_pipelines(pipeline_file).values()
    pipeline.with_config(str(config)).run(run_name="from-python")
    history = Repository().get_pipeline("training")
    cli_run, py_run = history.get_run("from-cli"), history.get_run("from-python")
    for slot in ("load", "train"):
        assert cli_run.get_step(slot).parameters == py_run.get_step(slot).parameters
    assert py_run.get_step("train").parameters["scale"] == 4.0


def test_bad_configs_are_explained(cli, repo, pipeline_file, isolated):
    cases = {
        "steps:\n  trainer: {parameters: {scale: 1}}\n": "has slots ['load', 'train']",
        "steps:\n  train: {parameters: {scael: 1}}\n": "scael",
        "steps:\n  train: {parameters: {scale: lots}}\n": "scale",
        "stepz: {}\n": "Unknown pipeline config key",
        "steps: [\n": "Cannot read pipeline config",
    }
    for i, (text, message) in enumerate(cases.items()):
        config = isolated / f"bad{i}.yaml"
        config.write_text(text)
        result = cli("pipeline", "run", str(pipeline_file), "-c", str(config), code=1)
        assert message in result.stderr, (text, result.stderr)
        assert "Traceback" not in result.output
    assert Repository().history_stack_keys() == ["default"]
    assert json.loads(cli("run", "list", "--json").stdout) == []  # nothing ran


def test_a_failing_step_shows_the_users_traceback_and_is_recorded(cli, repo, pipeline_file):
    config = pipeline_file.parent / "fail.yaml"
    config.write_text("steps:\n  train:\n    parameters: {fail: true}\n")
    result = cli(
        "pipeline", "run", str(pipeline_file), "-c", str(config), "--run-name", "bad", code=1
    )
    assert "Traceback" in result.stderr
    assert 'raise ValueError("diverged: loss is nan")' in result.stderr  # the user's own line
    assert "✗ train: failed" in result.stderr
    assert "runstack step show bad train" in result.stderr
    failed = json.loads(cli("run", "list", "--status", "failed", "--json").stdout)
    assert [r["name"] for r in failed] == ["bad"]
    show = cli("run", "show", "bad").stdout
    assert "diverged" in show and "failed" in show
    step = json.loads(cli("step", "show", "bad", "train", "--json").stdout)
    assert "ValueError" in step["traceback"]


def test_files_without_exactly_one_pipeline(cli, repo, pipeline_file, isolated):
    empty = isolated / "empty.py"
    empty.write_text("x = 1\n")
    assert "creates no pipeline instance" in cli("pipeline", "run", str(empty), code=1).stderr

    only_class = isolated / "only_class.py"
    only_class.write_text(
        "from runstack.pipelines import pipeline\n\n@pipeline\ndef lonely(a):\n    a()\n"
    )
    assert "p = lonely(...)" in cli("pipeline", "run", str(only_class), code=1).stderr

    two = isolated / "two.py"
    two.write_text(
        pipeline_file.read_text() + "\nsecond_copy = training(load=load(), train=train())\n"
    )
    result = cli("pipeline", "run", str(two), code=1)
    assert "training_pipeline (training), second_copy (training)" in result.stderr
    cli("pipeline", "run", str(two), "--pipeline", "second_copy")
    assert "has no pipeline 'x'" in cli("pipeline", "run", str(two), "-p", "x", code=1).stderr


def test_a_file_that_fails_to_import_shows_its_traceback(cli, repo, isolated):
    broken = isolated / "broken.py"
    broken.write_text("import os\n\ndef f():\n    return 1 / 0\n\nf()\n")
    result = cli("pipeline", "run", str(broken), code=1)
    assert "ZeroDivisionError" in result.stderr and "broken.py" in result.stderr
    assert "raised ZeroDivisionError while loading" in result.stderr
    missing = cli("pipeline", "run", str(isolated / "nope.py"), code=2)
    assert "does not exist" in missing.stderr


def test_the_file_can_import_its_neighbours(cli, repo, isolated: Path):
    (isolated / "helpers_mod.py").write_text("ROWS = 2\n")
    main = isolated / "uses_neighbour.py"
    main.write_text(
        "from helpers_mod import ROWS\n"
        "from runstack.pipelines import pipeline\n"
        "from runstack.steps import step\n\n"
        "@step\ndef make() -> int:\n    return ROWS\n\n"
        "@pipeline\ndef neighbourly(make):\n    make()\n\n"
        "p = neighbourly(make=make())\n"
    )
    run = json.loads(cli("pipeline", "run", str(main), "--json").stdout)
    value = json.loads(cli("artifact", "read", run["name"], "make", "--json").stdout)
    assert value["text"] == "2"


SELF_RUNNING = """
from runstack.pipelines import pipeline
from runstack.steps import step


@step
def hello() -> str:
    return "hello"


@pipeline
def greeting(s):
    s()


greeting(s=hello()).run(run_name="{name}")
"""


def test_a_file_that_runs_its_pipeline_when_loaded_is_run_once_and_reported(cli, repo, isolated):
    """Issue 11: 20. It used to record the run, then exit 1 with 'creates no pipeline'."""
    script = isolated / "script.py"
    script.write_text(SELF_RUNNING.format(name="by-the-script"))
    result = cli("pipeline", "run", str(script))
    assert "ran 1 pipeline run(s) itself" in result.stdout
    assert "Run by-the-script of pipeline greeting completed" in result.stdout
    runs = Repository().get_pipeline("greeting").runs
    assert [r.name for r in runs] == ["by-the-script"]  # once, not twice

    again = isolated / "again.py"
    again.write_text(SELF_RUNNING.format(name="json-run") + "\np = greeting(s=hello())\n")
    out = cli("pipeline", "run", str(again), "--json", "--run-name", "ignored")
    assert json.loads(out.stdout)["name"] == "json-run"
    assert "were not applied" in out.stderr
    assert len(Repository().get_pipeline("greeting").runs) == 2


def test_a_file_whose_own_run_fails_exits_1_naming_the_run(cli, repo, isolated):
    script = isolated / "failing.py"
    script.write_text(
        SELF_RUNNING.format(name="broken").replace('return "hello"', 'raise ValueError("no")')
    )
    result = cli("pipeline", "run", str(script), code=1)
    assert "ValueError: no" in result.stderr and "runstack run show broken" in result.stderr
    assert [r.status.value for r in Repository().get_pipeline("greeting").runs] == ["failed"]


def test_run_tags_from_the_command_line(cli, repo, pipeline_file):
    cli("pipeline", "run", str(pipeline_file), "--run-name", "tagged", "--tag", "exp=cli")
    assert repo.get_pipeline("training").get_run("tagged").tags == {"exp": "cli"}
    bad = cli("pipeline", "run", str(pipeline_file), "--tag", "bad key=x", code=1)
    assert "'bad key' is not allowed" in bad.stderr
    assert repo.get_pipeline("training").get_run_names() == ["tagged"]  # nothing ran
