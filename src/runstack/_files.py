"""Files runstack creates are private to the user unless asked otherwise.

The metadata store, artifacts and captured logs hold a team's data, models and whatever the
steps printed; the config may name credentials. So folders runstack creates (the ``.runstack``
folder, an artifact store's root, a SQLite store's folder) are made ``0700`` and a new SQLite
store file ``0600`` (its ``-wal`` and ``-shm`` take the file's mode). Files inside private
folders keep the usual umask modes: nobody else can reach them.

``RUNSTACK_FILE_MODE=umask`` makes runstack create everything with the process umask instead
(e.g. ``umask 002`` for a folder shared by a group). Existing folders and files are never
changed.
"""

from __future__ import annotations

import contextlib
import os

MODE_VARIABLE = "RUNSTACK_FILE_MODE"


def private() -> bool:
    """Whether new files and folders are made private (the default)."""
    return os.environ.get(MODE_VARIABLE, "private").strip().lower() != "umask"


def make_dirs(path: str | os.PathLike[str]) -> None:
    """``os.makedirs(path, exist_ok=True)``; the folders it creates are private (0700)."""
    os.makedirs(path, mode=0o700 if private() else 0o777, exist_ok=True)


def make_file_private(path: str | os.PathLike[str]) -> None:
    """Make a file runstack just created readable by its owner only (unless umask mode)."""
    if private():
        with contextlib.suppress(OSError):  # e.g. a filesystem without modes
            os.chmod(path, 0o600)
