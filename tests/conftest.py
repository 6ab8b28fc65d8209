"""Shared fixtures: every test runs in its own folder with its own runstack repository."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from runstack.repository import Repository
from runstack.stack import _flavors

# The S3 test server (moto) and a fresh bucket per test: fixtures `s3_server` and `s3`;
# a local Ray instance for the session: fixture `ray_address`.
pytest_plugins = ["s3_support", "ray_support"]


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh working directory and user data dir; no repository unless a test makes one."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    monkeypatch.delenv("RUNSTACK_REPOSITORY", raising=False)
    yield tmp_path
    for store in _flavors._stores.values():
        store.dispose()
    _flavors._stores.clear()


@pytest.fixture
def repo(isolated: Path) -> Repository:
    """A repository with the default local stack in the test's working directory."""
    return Repository.init(isolated)


@pytest.fixture
def file_artifacts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every artifact is written as files, small built-in values too (they are otherwise
    kept inline in the metadata store): for tests that edit or delete artifact files."""
    monkeypatch.setenv("RUNSTACK_INLINE_MAX_BYTES", "0")
