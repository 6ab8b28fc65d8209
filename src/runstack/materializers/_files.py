"""Bridges for libraries that insist on a file path: a local path, or a temp copy for remotes."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from typing import Any


@contextlib.contextmanager
def path_to_write(artifact: Any, name: str) -> Iterator[str]:
    """A path to write ``name`` to; for a remote store it is uploaded when the block ends."""
    local = artifact.local_path(name)
    if local is not None:
        yield local
        return
    with tempfile.TemporaryDirectory(prefix="runstack-") as tmp:
        path = os.path.join(tmp, name)
        yield path
        with open(path, "rb") as src, artifact.open(name, "wb") as dst:
            shutil.copyfileobj(src, dst)


@contextlib.contextmanager
def path_to_read(artifact: Any, name: str) -> Iterator[str]:
    """A local path holding ``name``; for a remote store, a temporary download."""
    local = artifact.local_path(name)
    if local is not None:
        if not os.path.exists(local):
            raise FileNotFoundError(local)
        yield local
        return
    with tempfile.TemporaryDirectory(prefix="runstack-") as tmp:
        path = os.path.join(tmp, name)
        with artifact.open(name, "rb") as src, open(path, "wb") as dst:
            shutil.copyfileobj(src, dst)
        yield path
