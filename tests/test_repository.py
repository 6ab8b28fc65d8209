"""Finding the repository: `runstack init` folders, walking up, and the global default."""

from __future__ import annotations

from pathlib import Path

import pytest

from runstack.exceptions import ConfigError
from runstack.pipelines import pipeline
from runstack.repository import Repository
from runstack.steps import step


@step
def one() -> int:
    return 1


@pipeline
def tiny(a):
    a()


def test_init_creates_a_default_local_stack(isolated: Path) -> None:
    repo = Repository.init(isolated)
    assert repo.config_dir == isolated / ".runstack"
    assert repo.root == isolated
    assert repo.active_stack_key == "default"
    stack = repo.active_stack
    assert stack.metadata_store.url.database == str(isolated / ".runstack" / "metadata.db")
    assert stack.artifact_store.path == str(isolated / ".runstack" / "artifacts")
    assert Repository.init(isolated).config == repo.config  # idempotent


def test_repository_is_found_from_a_subfolder(
    isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    Repository.init(isolated)
    nested = isolated / "src" / "deep"
    nested.mkdir(parents=True)
    monkeypatch.chdir(nested)
    tiny(one()).run(run_name="from-subfolder")
    assert Repository().config_dir == isolated / ".runstack"
    assert (
        Repository(isolated).get_pipeline("tiny").get_run("from-subfolder").steps[0].output.read()
        == 1
    )


def test_without_init_the_global_default_repository_is_used(isolated: Path) -> None:
    tiny(one()).run(run_name="global")
    repo = Repository()
    assert repo.config_dir == isolated / "xdg-data" / "runstack"
    assert (repo.config_dir / "metadata.db").is_file()
    assert repo.get_pipeline("tiny").get_run("global").status.value == "completed"
    assert not (isolated / ".runstack").exists()


def test_environment_variable_selects_a_repository(
    isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = isolated / "team"
    Repository.init(elsewhere)
    monkeypatch.setenv("RUNSTACK_REPOSITORY", str(elsewhere))
    tiny(one()).run(run_name="env")
    assert Repository(elsewhere).get_pipeline("tiny").get_run("env")


def test_a_repository_opened_through_a_link_follows_the_link_when_it_changes(
    isolated: Path,
) -> None:
    first, second = Repository.init(isolated / "a"), Repository.init(isolated / "b")
    link = isolated / "current"
    link.symlink_to(isolated / "a")
    assert Repository(link).config_dir == first.config_dir
    link.unlink()
    link.symlink_to(isolated / "b")
    assert Repository(link).config_dir == second.config_dir


def test_missing_or_broken_repository_is_a_clear_error(isolated: Path) -> None:
    with pytest.raises(ConfigError, match="No runstack repository at .*runstack init"):
        Repository(isolated / "nowhere")
    repo = Repository.init(isolated)
    tiny(one()).run(run_name="before")
    original = repo.config_path.read_text()
    repo.config_path.write_text("stacks: [not: a mapping")
    with pytest.raises(
        ConfigError, match="(?s)Cannot read the runstack config .*recorded runs are kept"
    ):
        Repository()
    repo.config_path.write_text("version: 99\n")
    with pytest.raises(ConfigError, match="version 99, newer than this runstack"):
        Repository()
    repo.config_path.write_text("active_stack: 3\nstacks: {}\nbogus: 1\n")
    with pytest.raises(ConfigError, match="is invalid: .*bogus"):
        Repository()
    repo.config_path.write_text(original)
    assert Repository().get_pipeline("tiny").get_run("before").steps[0].output.read() == 1
