"""Files runstack creates are private to the user by default; RUNSTACK_FILE_MODE=umask
creates them with the process umask instead (issue 11: 15)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from runstack.pipelines import pipeline
from runstack.repository import Repository
from runstack.steps import step


@step
def chatty() -> int:
    print("the step's captured log")
    return 1


@pipeline(name="private")
def one(s):
    s()


@pytest.fixture
def umask_022() -> Iterator[None]:
    previous = os.umask(0o022)  # the common default, under which files are world-readable
    try:
        yield
    finally:
        os.umask(previous)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _reachable_by_others(path: Path, root: Path) -> bool:
    """Whether another user can read ``path``: every folder from ``root`` down lets them in."""
    folders = [p for p in [path, *path.parents] if p == root or root in p.parents]
    return all(_mode(p) & 0o001 for p in folders if p.is_dir()) and bool(_mode(path) & 0o004)


def test_store_artifacts_and_logs_are_private_by_default(isolated: Path, umask_022: None) -> None:
    repo = Repository.init(isolated)
    run = one(chatty()).run()
    step = run.get_step("s")
    db = repo.config_dir / "metadata.db"
    assert _mode(repo.config_dir) == 0o700
    assert _mode(db) == 0o600
    arts = repo.config_dir / "artifacts"
    assert _mode(arts) == 0o700
    files = [p for p in isolated.joinpath(".runstack").rglob("*") if p.is_file()]
    assert any(p.name == "logs.txt" for p in files) and step.output.read() == 1
    for path in files:
        assert not _reachable_by_others(path, isolated), path


def test_a_store_and_artifact_root_elsewhere_are_created_private(
    isolated: Path, umask_022: None
) -> None:
    repo = Repository.init(isolated)
    repo.register_component("metadata_store", "elsewhere", "sqlite",
                            {"path": str(isolated / "stores" / "team.db")})  # fmt: skip
    repo.register_component("artifact_store", "elsewhere", "local",
                            {"path": str(isolated / "shared" / "artifacts")})  # fmt: skip
    repo.register_stack("elsewhere", orchestrator="local", metadata_store="elsewhere",
                        artifact_store="elsewhere")  # fmt: skip
    repo.set_active_stack("elsewhere")
    one(chatty()).run()
    assert _mode(isolated / "stores") == 0o700
    assert _mode(isolated / "stores" / "team.db") == 0o600
    assert _mode(isolated / "shared" / "artifacts") == 0o700
    assert _mode(isolated / "shared") == 0o755  # only the folder runstack owns is private


def test_umask_mode_keeps_the_process_umask(
    isolated: Path, umask_022: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNSTACK_FILE_MODE", "umask")
    repo = Repository.init(isolated)
    one(chatty()).run()
    assert _mode(repo.config_dir) == 0o755
    assert _mode(repo.config_dir / "metadata.db") == 0o644
    assert _mode(repo.config_dir / "artifacts") == 0o755
