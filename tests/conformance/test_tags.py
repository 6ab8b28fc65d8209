"""Run tags and notes: set at run time or later, shown, and filtered on in the database."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from conformance_pipelines import make_first_pipeline

from runstack.cli import main
from runstack.exceptions import RunstackError
from runstack.metadata_stores import SQLMetadataStore
from runstack.post_execution import RunFilter
from runstack.repository import Repository


def _cli(*args: str, code: int = 0) -> str:
    result = CliRunner().invoke(main, list(args), prog_name="runstack")
    assert result.exit_code == code, (args, result.output, result.exception)
    return result.stdout if code == 0 else result.stderr


def test_tags_given_at_run_time_filter_listings(team: Repository) -> None:
    make_first_pipeline().run(run_name="a", tags={"team": "vision", "exp": "lr-sweep"})
    make_first_pipeline().run(run_name="b", tags={"team": "vision", "exp": "baseline"})
    make_first_pipeline().run(run_name="c")
    pipeline = team.get_pipeline("first_pipeline")
    assert pipeline.get_run("a").tags == {"exp": "lr-sweep", "team": "vision"}
    assert pipeline.get_run("c").tags == {}
    assert [r.name for r in pipeline.get_runs(tags={"exp": "lr-sweep"})] == ["a"]
    assert [r.name for r in pipeline.get_runs(tags={"team": "vision"})] == ["a", "b"]
    assert pipeline.get_runs(tags={"team": "vision", "exp": "nope"}) == []
    where = RunFilter(tags={"team": "vision"}, newest_first=True, limit=1)
    assert [r.name for r in pipeline.get_runs(where)] == ["b"]
    # A listing loads every run's tags at once.
    assert [r.tags.get("exp") for r in pipeline.runs] == ["lr-sweep", "baseline", None]


def test_tags_and_notes_change_after_the_run(team: Repository) -> None:
    make_first_pipeline().run(run_name="a", tags={"exp": "lr-sweep", "stage": "draft"})
    out = json.loads(
        _cli("run", "tag", "a", "stage=final", "owner=ada", "--remove", "exp", "--json")
    )
    assert out["tags"] == {"owner": "ada", "stage": "final"}
    _cli("run", "note", "a", "Best so far; lr=0.1 diverged after epoch 3.")
    run = team.get_pipeline("first_pipeline").get_run("a")
    assert run.tags == {"owner": "ada", "stage": "final"}
    assert run.note == "Best so far; lr=0.1 diverged after epoch 3."
    shown = json.loads(_cli("run", "show", "a", "--json"))
    assert shown["tags"] == {"owner": "ada", "stage": "final"}
    assert shown["note"].startswith("Best so far")
    table = _cli("run", "show", "a")
    assert "owner=ada, stage=final" in table and "Best so far" in table
    listed = json.loads(_cli("run", "list", "--tag", "stage=final", "--json"))
    assert [r["name"] for r in listed] == ["a"]
    assert json.loads(_cli("run", "list", "--tag", "exp=lr-sweep", "--json")) == []
    _cli("run", "note", "a", "")
    assert team.get_pipeline("first_pipeline").get_run("a").note is None


@pytest.mark.parametrize(
    ("tags", "message"),
    [
        ({"": "x"}, "non-empty"),
        ({"bad key": "x"}, "'bad key' is not allowed"),
        ({"k" * 65: "x"}, "at most 64"),
        ({"exp": 3}, "tag values are strings"),
        ({"exp": "two\nlines"}, "control characters"),
        ({"exp": "v" * 256}, "longer than 255"),
    ],
)
def test_bad_tags_are_refused_before_the_run_starts(
    store: SQLMetadataStore, tags: dict, message: str
) -> None:
    with pytest.raises(RunstackError, match=message):
        make_first_pipeline().run(run_name="never", tags=tags)
    assert store.list_runs() == []  # nothing was recorded


def test_bad_tag_arguments_are_refused_with_the_fix(team: Repository) -> None:
    make_first_pipeline().run(run_name="a")
    assert "key=value" in _cli("run", "tag", "a", "exp", code=1)
    assert "--remove KEY" in _cli("run", "tag", "a", code=2)
    assert "both set and removed" in _cli("run", "tag", "a", "x=1", "--remove", "x", code=1)
    assert team.get_pipeline("first_pipeline").get_run("a").tags == {}
