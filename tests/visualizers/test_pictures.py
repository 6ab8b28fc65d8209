"""The pictures, read back as XML: what a user sees in them is what was recorded."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest
from viz_runs import DEPENDENCIES, run_training

from runstack.materializers._tabular import statistics_of
from runstack.post_execution import RunView
from runstack.repository import Repository
from runstack.visualizers import (
    DataEdge,
    RunModel,
    StepNode,
    metric_points,
    metric_svg,
    run_graph_svg,
    statistics_svg,
    timeline_svg,
)

NS = {"s": "http://www.w3.org/2000/svg"}


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)  # also proves it is well-formed XML


def steps_of(root: ET.Element) -> dict[str, str]:
    return {
        g.get("data-step"): g.get("data-status") for g in root.iterfind(".//s:g[@class='step']", NS)
    }


def edges_of(root: ET.Element) -> list[tuple[str, str]]:
    return [
        (g.get("data-source"), g.get("data-target"))
        for g in root.iterfind(".//s:g[@class='edge']", NS)
    ]


def all_text(el: ET.Element) -> str:
    return " ".join(t for t in el.itertext())


def test_run_graph_has_a_node_per_step_and_an_edge_per_dependency(first_run: RunView) -> None:
    root = parse(run_graph_svg(first_run))
    assert steps_of(root) == {"load": "completed", "train": "completed", "evaluate": "completed"}
    edges = edges_of(root)
    assert sorted(edges) == sorted(DEPENDENCIES)  # one each, none twice
    load = root.find(".//s:g[@data-step='load']", NS)
    assert "→ table, features" in all_text(load) and "completed" in all_text(load)
    arrow = root.find(".//s:g[@data-source='load'][@data-target='train']", NS)
    assert "table, features" in all_text(arrow)  # the arrow names what flowed along it


def test_run_graph_shows_cached_and_failed_steps(first_run: RunView) -> None:
    cached = run_training(0.1)  # same inputs: every step reused
    assert set(steps_of(parse(run_graph_svg(cached))).values()) == {"cached"}
    failed = run_training(0.3, fail=True)
    statuses = steps_of(parse(run_graph_svg(failed)))
    assert statuses == {"load": "cached", "train": "failed"}  # evaluate was never reached


def test_run_graph_of_a_live_model_shows_running_and_not_run_steps() -> None:
    t = datetime(2026, 1, 1, tzinfo=timezone.utc)
    model = RunModel(
        "live",
        "p",
        "running",
        (
            StepNode("a", "completed", start_time=t, end_time=t + timedelta(seconds=3)),
            StepNode("b", "running", start_time=t + timedelta(seconds=3)),
            StepNode("c", "not run"),
        ),
        (DataEdge("a", "b"), DataEdge("b", "c"), DataEdge("a", "c")),
    )
    root = parse(run_graph_svg(model))
    assert steps_of(root) == {"a": "completed", "b": "running", "c": "not run"}
    assert len(edges_of(root)) == 3
    assert "3.00s" in all_text(root.find(".//s:g[@data-step='a']", NS))


def test_names_from_users_are_text_never_markup() -> None:
    evil = "<script>alert('x')</script>&\"\x01"
    model = RunModel(evil, evil, "completed", (StepNode(evil, "completed", outputs=(evil,)),), ())
    for svg in (run_graph_svg(model), timeline_svg(model), metric_svg([(evil, 1.0)], evil)):
        root = parse(svg)
        assert root.find(".//s:script", NS) is None and root.find(".//script") is None
        assert "<script>" not in svg
        assert "<script>alert('x')</script>&\"" in all_text(root)  # shown as the text it is


def test_timeline_has_a_bar_per_step_and_parallel_steps_overlap() -> None:
    t = datetime(2026, 1, 1, tzinfo=timezone.utc)
    s = timedelta(seconds=1)
    model = RunModel(
        "r",
        "p",
        "completed",
        (
            StepNode("prep", "completed", start_time=t, end_time=t + 2 * s),
            StepNode("left", "completed", start_time=t + 2 * s, end_time=t + 6 * s),
            StepNode("right", "completed", start_time=t + 2 * s, end_time=t + 4 * s),
            StepNode("later", "not run"),
        ),
        (),
    )
    bars = {
        b.get("data-step"): b
        for b in parse(timeline_svg(model)).iterfind(".//s:rect[@class='bar']", NS)
    }
    assert set(bars) == {"prep", "left", "right"}  # a step that never started has no bar
    x = {k: float(b.get("x")) for k, b in bars.items()}
    w = {k: float(b.get("width")) for k, b in bars.items()}
    assert x["left"] == x["right"] == pytest.approx(x["prep"] + w["prep"], abs=0.2)  # side by side
    assert (
        w["left"] == pytest.approx(2 * w["right"], abs=0.2) == pytest.approx(2 * w["prep"], abs=0.2)
    )


def test_timeline_of_a_recorded_run(first_run: RunView) -> None:
    bars = parse(timeline_svg(first_run)).findall(".//s:rect[@class='bar']", NS)
    assert sorted(b.get("data-step") for b in bars) == ["evaluate", "load", "train"]


def test_statistics_picture_has_a_histogram_per_numeric_column() -> None:
    table = pd.DataFrame(
        {
            "age": np.linspace(0, 1, 100),
            "score": [None if i % 4 == 0 else float(i % 7) for i in range(100)],
            "city": ["a", "b", "b", "c"] * 25,
            "when": pd.date_range("2020-01-01", periods=100),
        }
    )
    stats = statistics_of(table)
    root = parse(statistics_svg(stats))
    columns = {g.get("data-column"): g for g in root.iterfind(".//s:g[@class='column']", NS)}
    assert {k: g.get("data-kind") for k, g in columns.items()} == {
        "age": "histogram",
        "score": "histogram",
        "city": "top-values",
        "when": "summary",
    }
    age_bars = columns["age"].findall(".//s:rect[@class='hist-bar']", NS)
    assert len(age_bars) == 20
    heights = [float(b.get("height")) for b in age_bars]
    assert min(heights) > 0  # evenly spread values fill every bin
    assert "nulls 25 (25%)" in all_text(columns["score"])
    assert "75 values" in all_text(columns["score"])
    top = [all_text(r) for r in columns["city"].iterfind(".//s:rect[@class='top-bar']", NS)]
    assert top == ["b: 50", "a: 25", "c: 25"]


def test_histogram_bins_count_every_value_once() -> None:
    stats = statistics_of(pd.DataFrame({"x": [1.0, 2.0, None, 4.0, float("nan"), 4.0]}))
    hist = stats["x"].histogram
    assert sum(n for _, _, n in hist) == stats["x"].count == 4
    assert hist[0][:2] == (1.0, 1.15) and hist[0][2] == 1 and hist[-1][2] == 2  # max is in
    assert stats.to_dict()["columns"]["x"]["histogram"][0] == (1.0, 1.15, 1)


def test_metric_over_runs_from_parameters_and_outputs(repo: Repository) -> None:
    for lr in (0.1, 0.3, 0.2):
        run_training(lr)
    run_training(0.4, fail=True)  # no accuracy recorded: a gap, not a zero
    pipe = repo.get_pipeline("training")
    lrs = metric_points(pipe, "train.lr")
    accuracy = metric_points(pipe, "train.accuracy")
    assert [v for _, v in lrs] == [0.1, 0.3, 0.2, 0.4]
    assert [v for _, v in accuracy] == pytest.approx([0.6, 0.8, 0.7, None])
    assert [r for r, _ in accuracy] == pipe.get_run_names()
    root = parse(metric_svg(accuracy, "train.accuracy"))
    points = root.findall(".//s:circle[@class='point']", NS)
    assert [float(p.get("data-value")) for p in points] == pytest.approx([0.6, 0.8, 0.7])
    ys = [float(p.get("cy")) for p in points]
    assert ys[1] < ys[2] < ys[0]  # higher values are drawn higher up
    with pytest.raises(ValueError, match="'<step>.<parameter or output>'.*'trainer.accuracy'"):
        metric_points(pipe, "accuracy")
