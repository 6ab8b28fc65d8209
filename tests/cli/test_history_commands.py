"""``runstack pipeline list``, ``run list|show``, ``step show`` and ``artifact show|read``."""

from __future__ import annotations

import json

import pytest

from runstack.post_execution import PipelineView
from runstack.repository import Repository


def test_pipeline_list(cli, two_runs):
    rows = json.loads(cli("pipeline", "list", "--json").stdout)
    assert [(r["name"], r["stack"], r["runs"], r["latest_run"]) for r in rows] == [
        ("training", "default", 2, "second")
    ]
    assert "training" in cli("pipeline", "list").stdout


def test_pipeline_list_on_an_empty_repository_says_how_to_start(cli, repo):
    assert "runstack pipeline run" in cli("pipeline", "list").stdout
    assert json.loads(cli("pipeline", "list", "--json").stdout) == []


def test_run_list_newest_first_with_filters(cli, two_runs):
    rows = json.loads(cli("run", "list", "--json").stdout)
    assert [r["name"] for r in rows] == ["second", "first"]
    assert rows[0]["steps"] == 2 and rows[0]["cached_steps"] == 0
    assert rows[0]["status"] == "completed"
    assert [r["name"] for r in json.loads(cli("run", "list", "--last", "1", "--json").stdout)] == [
        "second"
    ]
    assert json.loads(cli("run", "list", "training", "--status", "failed", "--json").stdout) == []
    table = cli("run", "list", "-n", "1").stdout
    names = [line.split()[0] for line in table.splitlines()[2:] if line.strip()]
    assert "second" in names and "first" not in names
    assert "use --last N or --all" in table
    assert "first" in cli("run", "list", "--all").stdout


def test_run_list_filters_in_the_database(cli, two_runs, monkeypatch):
    calls = []
    original = PipelineView.get_runs

    def spy(self, **kwargs):
        calls.append(kwargs)
        return original(self, **kwargs)

    monkeypatch.setattr(PipelineView, "get_runs", spy)
    cli("run", "list", "training", "--status", "completed", "--last", "1", "--json")
    assert calls == [{"status": "completed", "tags": None, "limit": 2, "newest_first": True}]


def test_run_list_of_an_unknown_pipeline_suggests_the_known_one(cli, two_runs):
    result = cli("run", "list", "trainin", code=1)
    assert "Did you mean 'training'" in result.stderr
    assert "--status" in cli("run", "list", "--status", "cached", code=2).stderr


def test_run_show(cli, two_runs):
    data = json.loads(cli("run", "show", "second", "--json").stdout)
    assert data["pipeline"] == "training" and data["status"] == "completed"
    steps = {s["name"]: s for s in data["steps"]}
    assert steps["load"]["cached"] is False
    assert set(steps["train"]["outputs"]) == {"weights", "loss"}
    assert steps["train"]["outputs"]["weights"]["data_type"] == "numpy.ndarray"
    assert steps["train"]["duration"] >= 0
    table = cli("run", "show", "second").stdout
    assert "weights: ndarray" in table and "completed" in table


def test_a_cached_step_shows_as_cached(cli, two_runs, pipeline_file):
    cli("pipeline", "run", str(pipeline_file), "--run-name", "third")
    steps = json.loads(cli("run", "show", "third", "--json").stdout)["steps"]
    assert [(s["name"], s["status"], s["cached"]) for s in steps] == [
        ("load", "cached", True),
        ("train", "cached", True),
    ]
    assert "yes" in cli("run", "show", "third").stdout
    assert "yes, outputs reused" in cli("step", "show", "third", "train").stdout


def test_step_show(cli, two_runs):
    data = json.loads(cli("step", "show", "second", "load", "--json").stdout)
    assert data["parameters"] == {"rows": 6}
    assert data["cache_key"]
    assert data["outputs"]["output"]["materializer"].endswith("Materializer")
    train = json.loads(cli("step", "show", "second", "train", "--json").stdout)
    assert train["inputs"]["df"]["producer_step"] == "load"
    text = cli("step", "show", "second", "train").stdout
    assert "parameter scale" in text and "from step" in text
    assert "Did you mean 'train'" in cli("step", "show", "second", "trian", code=1).stderr


def test_artifact_show_and_read(cli, two_runs):
    shown = json.loads(cli("artifact", "show", "second", "train", "weights", "--json").stdout)
    assert shown["data_type"] == "numpy.ndarray" and shown["producer_run"] == "second"
    frame = json.loads(cli("artifact", "read", "second", "load", "--rows", "2", "--json").stdout)
    assert frame["shape"] == [6, 2]
    assert frame["head"] == {"columns": ["x", "y"], "rows": [[0, 0.0], [1, 2.0]]}
    text = cli("artifact", "read", "second", "load", "-n", "2").stdout
    assert "shape (6, 2)" in text and "4 more rows" in text
    weights = json.loads(cli("artifact", "read", "second", "train", "weights", "--json").stdout)
    assert (weights["shape"], weights["dtype"]) == ([2, 3], "float64")
    assert (
        "shape (2, 3), dtype float64"
        in cli("artifact", "read", "second", "train", "weights").stdout
    )
    assert (
        json.loads(cli("artifact", "read", "first", "train", "loss", "--json").stdout)["text"]
        == "12.0"
    )


def test_artifact_of_a_step_with_several_outputs_needs_a_name(cli, two_runs):
    result = cli("artifact", "read", "second", "train", code=1)
    assert "weights, loss" in result.stderr and "Traceback" not in result.output


def test_unknown_run_is_a_clear_error(cli, two_runs):
    for args in (("run", "show", "nope"), ("step", "show", "nope", "load")):
        result = cli(*args, code=1)
        assert "No run named 'nope'" in result.stderr and "runstack run list" in result.stderr


@pytest.fixture
def team_stack(cli, two_runs):
    cli("metadata-store", "register", "team-db", "-f", "sqlite", "path=team.db")
    cli("stack", "register", "team", "-o", "local", "-m", "team-db", "-a", "local")
    return "team"


def test_history_reads_every_stack_unless_one_is_named(cli, team_stack, pipeline_file):
    cli("pipeline", "run", str(pipeline_file), "--stack", "team", "--run-name", "on-team")
    assert Repository().active_stack_key == "default"  # --stack did not switch stacks
    rows = json.loads(cli("run", "list", "--json").stdout)
    assert {(r["name"], r["stack"]) for r in rows} == {
        ("first", "default"),
        ("second", "default"),
        ("on-team", "team"),
    }
    only_team = json.loads(cli("run", "list", "--stack", "team", "--json").stdout)
    assert [r["name"] for r in only_team] == ["on-team"]
    pipelines = json.loads(cli("pipeline", "list", "--json").stdout)
    assert sorted((p["stack"], p["runs"]) for p in pipelines) == [("default", 2), ("team", 1)]
    assert json.loads(cli("run", "show", "on-team", "--json").stdout)["stack"] == "team"
    assert "No stack named 'tema'" in cli("run", "list", "--stack", "tema", code=1).stderr


def test_reading_without_the_needed_library_says_what_to_install(cli, two_runs, monkeypatch):
    from runstack.post_execution import ArtifactView

    def missing(self, *args, **kwargs):
        raise ModuleNotFoundError("No module named 'pandas'", name="pandas")

    monkeypatch.setattr(ArtifactView, "read", missing)
    result = cli("artifact", "read", "second", "load", code=1)
    assert "needs the module pandas" in result.stderr and "pip install" in result.stderr
    assert "Traceback" not in result.output


def test_an_unreachable_stack_is_skipped_with_a_warning_unless_named(cli, two_runs):
    cli("metadata-store", "register", "down", "-f", "postgresql", "port=1", "password=hunter2")
    cli("stack", "register", "down", "-o", "local", "-m", "down", "-a", "local")
    result = cli("run", "list", "--json")
    assert [r["name"] for r in json.loads(result.stdout)] == ["second", "first"]
    assert "Skipping stack 'down'" in result.stderr and "hunter2" not in result.stderr
    named = cli("pipeline", "list", "--stack", "down", code=1)
    assert "127.0.0.1:1" in named.stderr and "hunter2" not in named.output
