"""Notebook displays: each view renders itself, quickly, without loading pickle-based data."""

from __future__ import annotations

import html
import re
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from viz_runs import ExplodingMaterializer, run_training

from runstack.exceptions import MaterializerError
from runstack.pipelines import pipeline
from runstack.post_execution import RunView
from runstack.repository import Repository
from runstack.steps import step
from runstack.visualizers import _preview, run_graph_svg


def text_of(markup: str) -> str:
    """What a reader sees: style and tags dropped, entities decoded."""
    markup = re.sub(r"<style>.*?</style>", " ", markup, flags=re.S)
    return html.unescape(re.sub(r"<[^>]+>", " ", markup))


def test_pipeline_shows_its_runs_newest_first(first_run: RunView, repo: Repository) -> None:
    run_training(0.2, name="second")
    run_training(0.3, fail=True, name="third")
    shown = text_of(repo.get_pipeline("training")._repr_html_())
    assert "Pipeline training" in shown and "3 runs" in shown
    rows = re.findall(r"(first|second|third)\s+(completed|failed)", shown)
    assert rows == [("third", "failed"), ("second", "completed"), ("first", "completed")]


def test_run_shows_its_graph_and_steps_table(first_run: RunView) -> None:
    markup = first_run._repr_html_()
    assert markup.count("<svg") == 1 and "class='runstack-graph'" in markup
    shown = text_of(markup)
    for step_name in ("load", "train", "evaluate"):
        assert step_name in shown
    assert re.search(r"train\s+train\s+completed", shown)  # slot, function, status
    assert '"lr": 0.1' in shown and "model, accuracy" in shown


def test_step_shows_parameters_cache_decision_and_outputs(first_run: RunView) -> None:
    again = run_training(0.1)
    shown = text_of(again.get_step("evaluate")._repr_html_())
    assert "Step evaluate" in shown and "cached" in shown
    assert "reused the outputs of step" in shown and "'first'" in shown  # the cache decision
    assert re.search(r"report\s+dict\s+BuiltInMaterializer", shown)
    train = text_of(first_run.get_step("train")._repr_html_())
    assert re.search(r"lr\s+0\.1", train) and re.search(r"fail\s+false", train)
    assert re.search(r"model\s+Opaque\s+ExplodingMaterializer", train)


def test_artifact_previews_tables_arrays_and_values(first_run: RunView) -> None:
    load = first_run.get_step("load")
    table = load.outputs["table"]._repr_html_()
    shown = text_of(table)
    assert "200 rows, 3 columns" in shown
    assert "age (double)" in shown and "city (" in shown and "oslo" in shown  # the head
    assert table.count("class='hist-bar'") == 40  # age and income; city gets top values
    assert "nulls 20 (10%)" in shown  # income
    array = text_of(load.outputs["features"]._repr_html_())
    assert re.search(r"shape\s+\[3, 4\]", array) and re.search(r"dtype\s+float64", array)
    assert re.search(r"max\s+11", array) and re.search(r"mean\s+5\.5", array)
    report = text_of(first_run.get_step("evaluate").output._repr_html_())
    assert '"accuracy": 0.6' in report and '"rows": 200' in report


def test_display_never_loads_a_pickle_based_artifact(first_run: RunView) -> None:
    model = first_run.get_step("train").outputs["model"]
    with pytest.raises(MaterializerError, match="display loaded a pickle-based artifact"):
        model.read()  # what any read of it would do
    assert ExplodingMaterializer.reads == 1
    shown = text_of(model._repr_html_())
    assert "pickle-based" in shown and "not loaded for display" in shown and ".read()" in shown
    first_run._repr_html_()
    first_run.get_step("train")._repr_html_()
    from runstack.visualizers import report_html

    assert "ExplodingMaterializer" in report_html([first_run])
    assert ExplodingMaterializer.reads == 1  # display and report read it not once more


@step
def big() -> dict:
    return {"values": list(range(20_000))}


@step
def wide() -> pd.DataFrame:
    return pd.DataFrame(np.arange(60_000.0).reshape(2000, 30), columns=[f"c{i}" for i in range(30)])


@pipeline
def bulky(big, wide):
    big()
    wide()


def test_previews_read_a_bounded_part_of_big_artifacts(
    repo: Repository, monkeypatch: pytest.MonkeyPatch
) -> None:
    bulky(big(), wide()).run()
    run = repo.get_pipeline("bulky").runs[-1]
    value = text_of(run.get_step("big").output._repr_html_())
    assert "too big to show here" in value and "19999" not in value
    monkeypatch.setattr(_preview, "STATS_LIMIT", 1024)  # the table is bigger than this
    table = run.get_step("wide").output._repr_html_()
    shown = text_of(table)
    assert "2,000 rows, 30 columns" in shown and "Showing 20 of 30 columns" in shown
    assert "Statistics are computed on read()" in shown and "hist-bar" not in table
    assert shown.count("c19 (double)") == 1 and "c20 (double)" not in shown
    assert len(re.findall(r"<tr>", table)) == 1 + 10 + 4  # header, 10 rows, 4 fields


def test_missing_artifact_files_show_as_unavailable_not_an_error(first_run: RunView) -> None:
    table = first_run.get_step("load").outputs["table"]
    for f in Path(table.uri.removeprefix("file://")).iterdir():
        f.unlink()
    assert "Cannot preview it" in text_of(table._repr_html_())


def test_run_diff_shows_what_differs_before_and_after(first_run: RunView) -> None:
    second = run_training(0.2, name="second")
    markup = first_run.diff(second)._repr_html_()
    shown = text_of(markup)
    assert "Run diff: first → second" in shown
    assert re.search(r"train\s+parameter lr\s.*0\.1\s+0\.2", shown)
    assert re.search(r"output accuracy\s+0\.6\s+0\.7", shown)
    assert (
        "<span class='before'>0.1</span>" in markup and "<span class='after'>0.2</span>" in markup
    )
    assert "Same in both: load" in shown
    assert ExplodingMaterializer.reads == 0  # the model differs, and is compared by hash only
    same = text_of(first_run.diff(first_run)._repr_html_())
    assert "No differences." in same


def test_without_the_viz_extra_display_says_what_to_install(
    first_run: RunView, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "grandalf", None)  # as if not installed
    monkeypatch.setitem(sys.modules, "grandalf.graphs", None)
    shown = text_of(first_run._repr_html_())
    assert "pip install 'runstack[viz]'" in shown and "train" in shown  # the table still shows
    with pytest.raises(ImportError, match=r"runstack\[viz\]"):
        run_graph_svg(first_run)


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)


def test_a_run_named_like_markup_stays_text_in_displays_and_report(repo: Repository) -> None:
    evil = "<img src=x onerror=alert(1)><script>alert(2)</script>"
    run = run_training(0.1, name=evil)
    from runstack.visualizers import report_html

    for markup in (
        run._repr_html_(),
        run.get_step("train")._repr_html_(),
        repo.get_pipeline("training")._repr_html_(),
        report_html([run]),
    ):
        parser = _Tags()
        parser.feed(markup)
        assert not parser.tags & {"img", "script"}
        assert evil in text_of(markup)  # shown, as the text it is
