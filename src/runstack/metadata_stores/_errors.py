"""Database errors as ``StoreError``s that say what is wrong with the store and what to do.

Every error the driver raises while runstack reads or writes the store passes through
:func:`store_error` (``SQLMetadataStore`` does it in one place for reads, writes and opening),
so no raw ``OperationalError`` reaches a user. Problems of the store itself (not a database,
corrupted, read-only, its history missing) are :class:`StoreUnusableError`: the CLI stops on them
instead of skipping the store as it skips an unreachable server.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING

from runstack.exceptions import StoreError, StoreUnusableError
from runstack.metadata_stores._lazy import LazyModule

if TYPE_CHECKING:
    import sqlalchemy as sa
else:
    sa = LazyModule("sqlalchemy")


def _orig(e: BaseException) -> BaseException:
    return getattr(e, "orig", None) or e


def _code(e: BaseException) -> object:
    args = getattr(e, "args", ())
    return args[0] if args else None


def _sqlite_read_only(path: Path) -> bool:
    folder = path.parent
    return (folder.exists() and not os.access(folder, os.W_OK)) or (
        path.exists() and not os.access(path, os.W_OK)
    )


def read_only_message(where: str, path: Path) -> str:
    return (
        f"The SQLite metadata store {path} cannot be written: the file or its folder is "
        "read-only (a read-only mount, or permissions). SQLite writes beside the database "
        f"({path.name}-wal, {path.name}-shm) even to read it. Copy the store to a writable "
        f"folder (`runstack metadata-store backup DEST` on a machine that can write it, or copy "
        f"{path.name} together with any {path.name}-wal) and point the stack at the copy, or "
        "give this user write access to the folder."
    )


def store_error(
    e: BaseException, where: str, sqlite_path: Path | None, busy_s: float
) -> StoreError:
    """The ``StoreError`` for driver error ``e`` on the store at ``where`` (its display URL)."""
    orig = _orig(e)
    text = str(orig).strip()
    low = text.lower()
    sqlstate = getattr(orig, "sqlstate", None)
    code = _code(orig)
    if sqlite_path is not None or isinstance(orig, sqlite3.Error):
        path = sqlite_path or Path(where)
        if "database is locked" in low or "database table is locked" in low:
            return StoreError(
                f"The SQLite metadata store {path} stayed locked by another connection for "
                f"{busy_s:g} s, so runstack could not write to it ({text}). Another process "
                "holds a write transaction open: a `sqlite3` shell inside BEGIN, a hung "
                "process, a backup or sync tool. Finish or stop it, then retry."
            )
        if "disk is full" in low or "disk full" in low:
            return StoreError(
                f"The disk holding the SQLite metadata store {path} is full ({text}). Free "
                "space there and retry; what was recorded before is intact."
            )
        if "not a database" in low or "file is encrypted" in low:
            return StoreUnusableError(
                f"{path} is not a SQLite database ({text}): the stack's metadata store points at "
                "another kind of file, or the file was overwritten. Point the stack at the right "
                "file (`runstack stack describe`), or move this one away to start a new store."
            )
        if "malformed" in low or "corrupt" in low:
            return StoreUnusableError(
                f"The SQLite metadata store {path} is corrupted ({text}). Stop writing to it; "
                f"check it with `sqlite3 {path} 'PRAGMA integrity_check'`, restore it from a "
                f"backup, or salvage what is readable with `sqlite3 {path} .recover | sqlite3 "
                "recovered.db` and point the stack at recovered.db."
            )
        if (
            "readonly" in low
            or "read-only" in low
            or ("unable to open" in low and _sqlite_read_only(path))
        ):
            return StoreUnusableError(read_only_message(where, path))
        if "unable to open" in low:
            return StoreUnusableError(
                f"Cannot open the SQLite metadata store {path} ({text}). Check that its folder "
                "exists and that this user may read and write there."
            )
        if "disk i/o error" in low:
            return StoreError(
                f"The disk holding the SQLite metadata store {path} failed a read or write "
                f"({text}): it may be full, removed, or failing. Check it and retry."
            )
    if sqlstate == "42501" or code in (1142, 1143, 1044, 1045):
        return StoreError(
            f"The database user of the metadata store {where} is not allowed to do this "
            f"({text}). Browsing needs SELECT on runstack's tables; running pipelines also needs "
            "INSERT, UPDATE and DELETE (and CREATE, ALTER, INDEX to create or upgrade the schema)."
        )
    if sqlstate == "53100" or code in (1114, 3, 1021):
        return StoreError(
            f"The database server of the metadata store {where} is out of disk space ({text}). "
            "Free space on the server and retry; what was recorded before is intact."
        )
    if (
        not isinstance(e, sqlite3.Error)  # (a raw sqlite3 error: no need to import SQLAlchemy)
        and isinstance(e, (sa.exc.OperationalError, sa.exc.InterfaceError))
    ) and ("connect" in low or "server" in low or "connection" in low):
        return StoreError(
            f"Lost or could not make the connection to the metadata store {where}: {text}. "
            "Check that the database server is running and reachable, and retry."
        )
    return StoreError(f"The metadata store {where} refused the request: {text}")
