"""Helpers for tests that write user modules, run them, edit them and run them again."""

from __future__ import annotations

import importlib
import os
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest


class Code:
    """User modules written to the test folder and imported afresh after every edit."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.names: set[str] = set()
        self._tick = 0

    def write(self, name: str, text: str) -> None:
        path = self.root / f"{name}.py"
        path.write_text(textwrap.dedent(text))
        # Import and inspect compare mtimes: make every edit visibly newer.
        self._tick += 10
        stamp = path.stat().st_mtime + self._tick
        os.utime(path, (stamp, stamp))
        self.names.add(name)

    def edit(self, name: str, old: str, new: str) -> None:
        text = (self.root / f"{name}.py").read_text()
        assert old in text
        self.write(name, text.replace(old, new))

    def load(self, name: str) -> Any:
        for n in self.names:
            sys.modules.pop(n, None)
        importlib.invalidate_caches()
        return importlib.import_module(name)


def user_code(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Code]:
    """Body of a ``code`` fixture: modules written to the test's folder, importable by name."""
    monkeypatch.syspath_prepend(str(isolated))
    c = Code(isolated)
    yield c
    for n in c.names:
        sys.modules.pop(n, None)


def statuses(run_view: Any) -> dict[str, str]:
    return {s.name: s.status.value for s in run_view.steps}


def reasons(run_view: Any, step_name: str) -> str:
    return str(run_view.get_step(step_name).cache_explanation)
