"""The artifact store: hands out a fresh URI per step output and publishes it atomically."""

from __future__ import annotations

import contextlib
import os
import posixpath
import re
import shutil
import uuid
from collections.abc import Iterator
from typing import Any

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _safe(part: str) -> str:
    return _UNSAFE.sub("_", part)[:80] or "_"


class ArtifactStore:
    """Artifacts under a root path or URL, served by fsspec (local disk by default).

    Each output gets its own URI; it is written under a staging name and renamed into place
    once the materializer is done, so a reader never sees a half-written artifact.
    """

    def __init__(self, path: str) -> None:
        self.path = path.rstrip("/") or "/"
        self.is_local = "://" not in path or path.startswith("file://")
        if self.is_local:
            self.path = os.path.abspath(path.removeprefix("file://"))
            os.makedirs(self.path, exist_ok=True)
        self._fs: Any = None
        self._run_parts: dict[tuple[str, str], str] = {}

    @property
    def fs(self) -> Any:
        if self._fs is None:
            from fsspec.core import url_to_fs

            self._fs, _ = url_to_fs(self.path)
        return self._fs

    def new_uri(self, pipeline: str, run: str, step: str, output: str) -> str:
        """A fresh URI ``<root>/<pipeline>/<run>-<random>/<step>/<output>``.

        The random part keeps runs apart when stores share a root, or when two run names
        sanitize to the same folder name; it is drawn once per run, so a run's outputs share
        one folder (and its parents are created once).
        """
        key = (pipeline, run)
        run_part = self._run_parts.get(key)
        if run_part is None:
            run_part = self._run_parts[key] = f"{_safe(run)}-{uuid.uuid4().hex[:8]}"
        return posixpath.join(self.path, _safe(pipeline), run_part, _safe(step), _safe(output))

    def logs_uri(self, pipeline: str, run: str, step: str) -> str:
        """Where the captured log of one step attempt is written."""
        return self.new_uri(pipeline, run, step, "_logs")

    @contextlib.contextmanager
    def staged(self, uri: str) -> Iterator[str]:
        """Yield a staging URI to write into; publish it as ``uri`` if the block succeeds."""
        staging = f"{uri}.partial-{uuid.uuid4().hex[:8]}"
        if self.is_local:
            os.makedirs(staging)
        else:
            self.fs.makedirs(staging, exist_ok=True)
        try:
            yield staging
        except BaseException:
            self.remove(staging)
            raise
        if self.is_local:
            if os.path.isdir(uri):  # the step wrote into its output URI itself: merge
                for name in os.listdir(staging):
                    os.replace(os.path.join(staging, name), os.path.join(uri, name))
                os.rmdir(staging)
            else:
                os.rename(staging, uri)
        else:
            self.fs.mv(staging, uri, recursive=True)

    def exists(self, uri: str) -> bool:
        if self.is_local:
            return os.path.isdir(uri)
        return bool(self.fs.exists(uri))

    def remove(self, uri: str) -> None:
        if self.is_local:
            shutil.rmtree(uri, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                self.fs.rm(uri, recursive=True)

    def __repr__(self) -> str:
        return f"ArtifactStore({self.path!r})"
