"""``runstack run diff``, ``run compare`` and the parameters and metrics of ``run show``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


@pytest.fixture
def three_runs(cli, two_runs, pipeline_file: Path) -> list[str]:
    """first (rows=4), second (rows=6), third (rows=4, scale=2.0: train re-runs)."""
    config = pipeline_file.parent / "scaled.yaml"
    config.write_text("steps:\n  train:\n    parameters:\n      scale: 2.0\n")
    cli("pipeline", "run", str(pipeline_file), "-c", str(config), "--run-name", "third")
    return [*two_runs, "third"]


def test_run_diff_prints_only_what_differs(cli, two_runs):
    out = cli("run", "diff", "first", "second").stdout
    assert "Run first -> second" in out
    lines = {line.split("│")[2].strip(): line for line in out.splitlines() if line.count("│") == 5}
    assert "parameter rows" in lines and "4" in lines["parameter rows"]
    assert "6" in lines["parameter rows"]
    assert "output output rows" in lines  # the table grew
    assert "input df" in lines  # train's input changed
    assert "12" in lines["output loss"] and "30" in lines["output loss"]
    assert "output weights" not in lines  # same content: not shown by default
    every = cli("run", "diff", "first", "second", "--all").stdout
    assert "output weights" in every and "same content" in every and "cached or ran" in every


def test_run_diff_colours_before_and_after(cli, two_runs, monkeypatch):
    monkeypatch.setenv("FORCE_COLOR", "1")
    monkeypatch.delenv("NO_COLOR", raising=False)
    out = cli("run", "diff", "first", "second").stdout
    assert "\x1b[31m4" in out  # before: red
    assert "\x1b[32m6" in out  # after: green


def test_run_diff_json(cli, two_runs):
    data = json.loads(cli("run", "diff", "first", "second", "--json").stdout)
    assert (data["a"]["name"], data["b"]["name"], data["identical"]) == ("first", "second", False)
    load, train = data["steps"]
    assert [(c["component"], c["name"], c["before"], c["after"]) for c in load["changes"]] == [
        ("parameter", "rows", 4, 6)
    ]
    assert load["outputs"][0]["detail"]["rows"] == {"before": 4, "after": 6, "delta": 2}
    # Without --all only outputs that differ; with it every output, flagged.
    assert [o["name"] for o in train["outputs"]] == ["loss"]
    every = json.loads(cli("run", "diff", "first", "second", "--json", "--all").stdout)
    outputs = {o["name"]: o for o in every["steps"][1]["outputs"]}
    assert (outputs["weights"]["same"], outputs["weights"]["differs"]) == (True, False)


def test_a_failed_step(cli, two_runs, pipeline_file):
    config = pipeline_file.parent / "fail.yaml"
    config.write_text("steps:\n  train:\n    parameters:\n      fail: true\n")
    cli("pipeline", "run", str(pipeline_file), "-c", str(config), "--run-name", "bad", code=1)
    data = json.loads(cli("run", "diff", "first", "bad", "--json").stdout)
    (train,) = data["steps"]  # load was reused from first: the same
    assert train["status"]["before"] == "completed" and train["status"]["after"] == "failed"
    assert [(c["name"], c["before"], c["after"]) for c in train["changes"]] == [
        ("fail", False, True)
    ]
    assert {o["name"]: o["presence"] for o in train["outputs"]} == {
        "weights": "only_a",
        "loss": "only_a",
    }
    out = cli("run", "diff", "first", "bad").stdout
    assert "failed" in out and "output loss" in out and "present" in out


def test_identical_runs(cli, two_runs, pipeline_file):
    cli("pipeline", "run", str(pipeline_file), "--run-name", "again")  # all cached from first
    out = cli("run", "diff", "first", "again").stdout
    assert "No differences" in out
    data = json.loads(cli("run", "diff", "first", "again", "--json").stdout)
    assert data["identical"] is True and data["steps"] == []


def test_latest_resolves_in_a_pipeline(cli, three_runs):
    data = json.loads(
        cli("run", "diff", "--pipeline", "training", "latest~1", "latest", "--json").stdout
    )
    assert (data["a"]["name"], data["b"]["name"]) == ("second", "third")
    data = json.loads(cli("run", "diff", "-p", "training", "latest~2", "latest", "--json").stdout)
    assert (data["a"]["name"], data["b"]["name"]) == ("first", "third")
    (train,) = data["steps"]  # load is cached from first in third: it does not differ
    assert [(c["name"], c["before"], c["after"]) for c in train["changes"]] == [("scale", 1.0, 2.0)]
    err = cli("run", "diff", "-p", "training", "latest~3", "latest", code=1).stderr
    assert "only 3 run(s)" in err
    err = cli("run", "diff", "latest~1", "latest", code=1).stderr
    assert "--pipeline" in err and "Traceback" not in err


def test_unknown_runs_list_the_known_names(cli, two_runs):
    err = cli("run", "diff", "first", "secnd", code=1).stderr
    assert "No run named 'secnd'" in err
    assert "Known runs (newest first): 'second', 'first'" in err
    assert "Did you mean 'second'?" in err
    err = cli("run", "show", "frist", code=1).stderr
    assert "Did you mean 'first'?" in err
    err = cli("run", "compare", "first", "nope", "-p", "training", code=1).stderr
    assert "Pipeline 'training' has no run 'nope'" in err


def test_run_compare(cli, three_runs):
    out = cli("run", "compare", "--pipeline", "training").stdout
    header = next(line for line in out.splitlines() if "run" in line and "status" in line)
    assert "load.rows" in header and "train.scale" in header and "train.loss" in header
    assert "train.fail" not in header  # the same in every run
    rows = [line for line in out.splitlines() if line.startswith("│")]
    assert [r.split("│")[1].strip() for r in rows] == ["first", "second", "third"]
    data = json.loads(cli("run", "compare", "first", "third", "--json").stdout)
    assert data["parameters"] == ["train.scale"]
    assert data["metrics"] == ["train.loss"]
    assert [(r["name"], r["parameters"], r["metrics"]) for r in data["rows"]] == [
        ("first", {"train.scale": 1.0}, {"train.loss": 12.0}),
        ("third", {"train.scale": 2.0}, {"train.loss": 12.0}),
    ]
    last = json.loads(cli("run", "compare", "-p", "training", "-n", "2", "--json").stdout)
    assert [r["name"] for r in last["rows"]] == ["second", "third"]
    assert "--pipeline" in cli("run", "compare", code=2).stderr


def test_run_show_has_parameters_and_metrics(cli, two_runs):
    data = json.loads(cli("run", "show", "second", "--json").stdout)
    assert data["parameters"] == {
        "load": {"rows": 6},
        "train": {"scale": 1.0, "fail": False},
    }
    assert data["metrics"] == {"train": {"loss": 30.0}}
    steps = {s["name"]: s for s in data["steps"]}
    assert steps["train"]["metrics"] == {"loss": 30.0}
    assert steps["train"]["outputs"]["loss"]["content_hash"]
    text = cli("run", "show", "second").stdout
    assert "load.rows" in text and "train.loss" in text and "30.0" in text
    step = json.loads(cli("step", "show", "second", "train", "--json").stdout)
    assert step["metrics"] == {"loss": 30.0} and step["parameters"] == {"scale": 1.0, "fail": False}
    assert "metric loss" in cli("step", "show", "second", "train").stdout


def test_read_limit_zero_compares_hashes_only(cli, two_runs):
    data = json.loads(cli("run", "diff", "first", "second", "--read-limit", "0", "--json").stdout)
    detail = data["steps"][0]["outputs"][0]["detail"]
    assert detail["kind"] == "opaque" and detail["note"] == "not read (read_limit=0)"
    assert detail["hashes"]["before"] != detail["hashes"]["after"]
    out = cli("run", "diff", "first", "second", "--read-limit", "0").stdout
    assert "output output hash" in out and "not read" in out
