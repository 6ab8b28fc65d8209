"""The SQLite store as files: what is checked before opening, how a new one appears, and how
its history gets out of the ``-wal`` file.

In WAL mode a commit lands in ``metadata.db-wal``; the main file catches up at checkpoints.
A ``.db`` copied without its ``-wal``, or a ``-wal`` left without its ``.db``, would open as an
empty store that accepts new runs. So:

* before opening, a store whose history is evidently elsewhere is refused (:func:`check`);
* a new store is built aside and linked into place whole (:func:`create`), so a store file
  without tables is never one runstack is in the middle of creating;
* each process checkpoints the store when it is done with it (:func:`checkpoint`, on
  ``dispose`` and at exit), so a store at rest is one self-contained file;
* :func:`backup` copies a live store consistently (SQLite's online backup).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import uuid
from collections.abc import Callable
from pathlib import Path

from runstack._files import make_file_private
from runstack.exceptions import StoreError, StoreUnusableError

_HEADER = b"SQLite format 3\x00"


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return -1


def wal_of(path: Path) -> Path:
    return path.with_name(path.name + "-wal")


def check(path: Path) -> None:
    """Refuse a store file whose history is evidently missing or which is no database."""
    size, wal_size = _size(path), _size(wal_of(path))
    if size <= 0:
        if wal_size > 0:
            raise StoreUnusableError(
                f"The SQLite metadata store {path} is {'empty' if size == 0 else 'missing'}, but "
                f"{wal_of(path).name} beside it holds {wal_size} bytes of its history: the "
                "database file was deleted, or only the -wal was copied. Restore "
                f"{path.name} from where it came from (copy a store with `runstack "
                f"metadata-store backup DEST`). To start a new, empty store here instead, move "
                f"{wal_of(path).name} (and {path.name}-shm) away."
            )
        return
    try:
        with open(path, "rb") as f:
            header = f.read(100)
    except OSError as e:
        raise StoreUnusableError(
            f"Cannot read the SQLite metadata store {path}: {e.strerror}. Check that this user "
            "may read and write it and its folder."
        ) from None
    if not header.startswith(_HEADER):
        raise StoreUnusableError(
            f"{path} is not a SQLite database (it does not start with SQLite's header): the "
            "stack's metadata store points at another kind of file, or the file was "
            "overwritten. Point the stack at the right file (`runstack stack describe`), or "
            "move this one away to start a new store."
        )
    pages = int.from_bytes(header[28:32], "big")
    in_wal_mode = header[18] == 2
    # One page is an empty schema; every table needs a page of its own. A WAL-mode database
    # with no table and no -wal lost its history: it was copied without the -wal.
    if in_wal_mode and pages <= 1 and wal_size <= 0:
        raise StoreUnusableError(
            f"The SQLite metadata store {path} holds no tables, and it was written in WAL mode: "
            f"its history was in {wal_of(path).name}, which is missing (the store was copied "
            f"without it, or it was deleted). Restore both files together (copy a live store "
            f"with `runstack metadata-store backup DEST`). To start a new store, delete {path}."
        )


def create(path: Path, build: Callable[[Path], None]) -> None:
    """Make a new store at ``path``: ``build`` fills a file aside, which is linked into place;
    if another process got there first, its store is kept."""
    tmp = path.with_name(f".{path.name}.new-{uuid.uuid4().hex[:8]}")
    try:
        build(tmp)
        checkpoint(tmp)
        make_file_private(tmp)  # before it is in place; -wal and -shm copy its mode
        try:
            os.link(tmp, path)  # atomic, and never replaces a store made meanwhile
        except FileExistsError:
            pass
        except OSError:  # a filesystem without hard links
            if not path.exists():
                os.replace(tmp, path)
    finally:
        for leftover in (tmp, wal_of(tmp), tmp.with_name(tmp.name + "-shm")):
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()


def checkpoint(path: Path) -> None:
    """Copy the history from the ``-wal`` into the database file and empty the ``-wal``.

    Best effort and quick: where other processes are using the store, the last one out does it.
    """
    if _size(wal_of(path)) <= 0:
        return
    try:
        conn = sqlite3.connect(path, timeout=1.0)
    except sqlite3.Error:
        return
    try:
        busy = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        if busy and busy[0]:  # readers in the way: copy what can be copied
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
    except sqlite3.Error:
        pass
    finally:
        conn.close()


def backup(path: Path, dest: Path) -> None:
    """A consistent copy of the store at ``path`` in the new file ``dest``, even in use."""
    if dest.exists():
        raise StoreError(f"{dest} already exists; choose a new file for the backup.")
    if _size(path) <= 0:
        raise StoreError(f"There is no SQLite metadata store at {path} to back up.")
    dest.parent.mkdir(parents=True, exist_ok=True)
    src = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=60)
    try:
        out = sqlite3.connect(dest)
        make_file_private(dest)  # holds the same history as the store
        try:
            src.backup(out)
            out.execute("PRAGMA journal_mode=DELETE")  # the copy is one self-contained file
        finally:
            out.close()
    except sqlite3.Error as e:
        with contextlib.suppress(FileNotFoundError):
            dest.unlink()
        raise StoreError(f"Could not back up {path} to {dest}: {e}.") from None
    finally:
        src.close()
