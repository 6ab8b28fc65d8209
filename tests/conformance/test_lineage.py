"""Lineage both ways: producers, consumers in any run (through cache reuse), upstream runs."""

from __future__ import annotations

import json

from click.testing import CliRunner

from runstack.cli import main
from runstack.pipelines import pipeline
from runstack.repository import Repository
from runstack.steps import BaseStepConfig, step


class EvalConfig(BaseStepConfig):
    threshold: float = 0.5


@step
def load() -> list:
    return [1, 2, 3]


@step
def train(data: list) -> float:
    return sum(data) / 10


@step(enable_cache=False)
def evaluate(config: EvalConfig, weight: float) -> bool:
    return weight > config.threshold


@pipeline
def lineage_pipeline(load, train, evaluate):
    evaluate(train(load()))


def _run(name: str) -> None:
    lineage_pipeline(load(), train(), evaluate()).run(run_name=name)


def _where(steps) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    return [(s.run.name, s.name) for s in steps]


def test_consumers_reusers_and_upstream_runs(team: Repository) -> None:
    for name in ("r1", "r2", "r3"):
        _run(name)
    p = team.get_pipeline("lineage_pipeline")
    r1, r2, r3 = (p.get_run(n) for n in ("r1", "r2", "r3"))
    data = r1.get_step("load").output
    weight = r1.get_step("train").output
    assert r3.get_step("train").output.id == weight.id  # r2 and r3 reused it from the cache
    # A cached train step still took `data` as its input: a consumer through cache reuse.
    assert _where(data.consumers) == [("r1", "train"), ("r2", "train"), ("r3", "train")]
    assert _where(data.reused_by) == [("r2", "load"), ("r3", "load")]
    assert _where(weight.consumers) == [("r1", "evaluate"), ("r2", "evaluate"), ("r3", "evaluate")]
    assert [c.inputs["weight"].id for c in weight.consumers] == [weight.id] * 3
    assert weight.producer_step.run.name == "r1"
    assert [r.name for r in r3.upstream_runs] == ["r1"]
    assert r1.upstream_runs == []


def test_lineage_command_prints_the_tree_both_ways(team: Repository) -> None:
    _run("r1")
    _run("r2")
    runner = CliRunner()
    result = runner.invoke(main, ["artifact", "lineage", "r2", "train", "--json"])
    assert result.exit_code == 0, result.output
    tree = json.loads(result.stdout)
    up = tree["upstream"]
    assert (up["producer"]["run"], up["producer"]["step"]) == ("r1", "train")
    (data,) = up["inputs"]
    assert (data["input"], data["producer"]["step"], data["inputs"]) == ("data", "load", [])
    down = tree["downstream"]
    assert [(c["run"], c["step"], c["input"]) for c in down["consumers"]] == [
        ("r1", "evaluate", "weight"),
        ("r2", "evaluate", "weight"),
    ]
    assert [c["outputs"][0]["output"] for c in down["consumers"]] == ["output", "output"]
    assert [(r["run"], r["step"]) for r in down["reused_by"]] == [("r2", "train")]
    text = runner.invoke(main, ["artifact", "lineage", "r1", "load"]).stdout
    assert "consumed as 'data' by train @ r1 (completed)" in text
    assert "consumed as 'data' by train @ r2 (cached)" in text
    assert "reused from the cache by load @ r2 (cached)" in text
    assert "consumed as 'weight' by evaluate @ r2 (completed)" in text
