"""The artifact store: owns the filesystem, hands out URIs, publishes and checks artifacts.

Everything that touches an artifact's bytes goes through one of these: the runner writes into
``staged(uri)``, readers open files through ``fs``, the cache asks ``holds`` and hashes
``files``. A small artifact may be kept inline with its record in the metadata store instead;
``holds`` / ``artifact_files`` / ``open_artifact_file`` take a record and treat both alike.
So the store is the one place that knows whether its filesystem is the local disk
(rename-based publishing) or an object store (no folders, no rename), and the one place that
refuses URIs outside its root.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import os
import posixpath
import re
import shutil
import uuid
from collections.abc import Iterable, Iterator, Mapping
from typing import IO, Any

from runstack._files import make_dirs
from runstack.exceptions import ArtifactNotFoundError, StoreError
from runstack.models import INLINE_FILE, ArtifactRecord

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_PREFIX_LEN = 60
LOGS_FOLDER = "_logs"
# A '.', '..' or empty path segment: such a URI is refused, as it may point outside the root.
_DOT_OR_EMPTY_PART = re.compile(r"(?:^|/)\.{0,2}(?:/|$)")


def _safe(part: str) -> str:
    return _UNSAFE.sub("_", part)[:_PREFIX_LEN] or "_"


@functools.lru_cache(maxsize=4096)  # a step's URIs ask for the same few names every run
def _folder(name: str) -> str:
    """A folder name that no other name maps to: a readable prefix plus a hash of the exact name.

    The prefix alone is lossy (``ä`` and ``ö`` are both ``_``; long names share a cut), so the
    hash decides; every folder made here ends in ``-`` and 10 hex digits, which keeps the
    store's own names (``_logs``, staging folders) out of their way.
    """
    digest = hashlib.blake2b(name.encode("utf-8", "surrogatepass"), digest_size=5).hexdigest()
    return f"{_safe(name)}-{digest}"


class ArtifactStore:
    """Artifacts under a root path or URL, served by fsspec (local disk by default).

    ``storage_options`` go to the fsspec filesystem (``endpoint_url``, ``key``, ``secret``,
    ``client_kwargs``...). The store pickles as its settings, so a worker process or a Ray
    node rebuilds its own filesystem (and credentials) rather than receiving a live client.

    Publishing: on the local disk an output is written under a staging name and renamed into
    place, so a half-written folder never appears under its URI. Object stores have no rename:
    there the materializer writes in place and the metadata record is the commit point; a
    failed write removes what it wrote, and files left by a crash are under a URI no record
    points to, so neither the views nor the cache ever take them for an artifact.
    """

    def __init__(self, path: str, storage_options: Mapping[str, Any] | None = None) -> None:
        self.storage_options: dict[str, Any] = dict(storage_options or {})
        self._local = "://" not in path or path.startswith("file://")
        if self._local:
            self.path = os.path.abspath(path.removeprefix("file://"))
            make_dirs(self.path)  # private to the user when created (see runstack._files)
        else:
            self.path = path.rstrip("/")
        self._fs: Any = None
        self._run_parts: dict[tuple[str, str], str] = {}
        self._inside: set[str] = set()  # URIs check() found inside the root
        # (uri, content hash) -> the files' (size, mtime) when their hash last matched here
        self._verified: dict[tuple[str, str], Any] = {}

    # -- pickling: by settings, never the live filesystem --------------------------------

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.path, self.storage_options))

    @property
    def fs(self) -> Any:
        """The fsspec filesystem serving this store, built once with its storage options."""
        if self._fs is None:
            if self._local:
                from fsspec.implementations.local import LocalFileSystem

                self._fs = LocalFileSystem()
            else:
                from fsspec.core import url_to_fs

                try:
                    self._fs, _ = url_to_fs(self.path, **self.storage_options)
                except ImportError as e:
                    protocol = self.path.split("://", 1)[0]
                    extra = {"s3": "s3", "s3a": "s3"}.get(protocol)
                    hint = f"pip install runstack[{extra}]" if extra else f"install {e.name}"
                    raise StoreError(
                        f"The artifact store {self.path!r} needs the fsspec backend for "
                        f"{protocol}://, which is not installed ({e}). Run `{hint}`."
                    ) from e
        return self._fs

    # -- URIs ------------------------------------------------------------------------------

    def new_uri(self, pipeline: str, run: str, step: str, output: str) -> str:
        """A fresh URI ``<root>/<pipeline>/<run>-<random>/<step>/<output>``, one per output.

        Each part is a readable prefix plus a hash of the exact name, so two outputs (or
        steps) never share a folder whatever their names. The random part keeps runs apart
        when stores share a root; it is drawn once per run, so a run's outputs share a folder.
        """
        return posixpath.join(self._step_uri(pipeline, run, step), _folder(output))

    def logs_uri(self, pipeline: str, run: str, step: str) -> str:
        """Where the captured log of one step attempt is written; never an output's folder."""
        return posixpath.join(self._step_uri(pipeline, run, step), LOGS_FOLDER)

    def _step_uri(self, pipeline: str, run: str, step: str) -> str:
        key = (pipeline, run)
        run_part = self._run_parts.get(key)
        if run_part is None:
            run_part = self._run_parts[key] = f"{_safe(run)}-{uuid.uuid4().hex[:8]}"
        return posixpath.join(self.path, _folder(pipeline), run_part, _folder(step))

    def check(self, uri: str, what: str | None = None) -> str:
        """``uri`` if it lies inside this store's root; else an ``ArtifactNotFoundError``.

        URIs come back from the metadata store, which may have been edited or may belong to
        another store: never read, reuse or delete anything outside the root.
        """
        if (
            isinstance(uri, str) and uri in self._inside
        ):  # checked before: every read checks it more than once
            return uri
        inside = self._relative(uri)
        if inside is None:
            raise ArtifactNotFoundError(
                f"{what or 'The artifact'} at {uri!r} is outside the artifact store's root "
                f"{self.path!r}, so it is not read, reused or removed. Its record points "
                "elsewhere (edited, or written by another stack's artifact store); read it "
                "with the stack whose artifact store holds it, or re-run the step."
            )
        if len(self._inside) >= 100_000:
            self._inside.clear()
        self._inside.add(uri)
        return uri

    def _relative(self, uri: str) -> str | None:
        """The path of ``uri`` below the root ('/'-separated), or None when not inside it."""
        if not isinstance(uri, str) or not uri:
            return None
        if self._local:
            if "://" in uri and not uri.startswith("file://"):
                return None
            path, root = uri.removeprefix("file://"), self.path
            if not os.path.isabs(path):
                return None
            rel = path[len(root) :] if path.startswith(root + os.sep) else None
            if os.sep != "/" and rel is not None:
                rel = rel.replace(os.sep, "/")
        else:
            protocol, sep, rest = uri.partition("://")
            root_protocol, _, root_rest = self.path.partition("://")
            if not sep or protocol != root_protocol:
                return None
            root = root_rest.rstrip("/")
            rel = rest[len(root) :] if rest.startswith(root + "/") else None
        if rel is None:
            return None
        rel = rel.strip("/")
        if not rel or _DOT_OR_EMPTY_PART.search(rel):
            return None
        return rel

    # -- publishing ------------------------------------------------------------------------

    @contextlib.contextmanager
    def staged(self, uri: str) -> Iterator[str]:
        """Yield the URI to write ``uri``'s files into; publish them if the block succeeds.

        A URI is written once: publishing onto one that already holds files is an error,
        never a merge. On an exception everything written is removed.
        """
        self.check(uri)
        if self.exists(uri):
            raise StoreError(
                f"Artifact folder {uri!r} already exists; an output is written once, by the "
                "runner. (A step that writes into its own output URI, e.g. through "
                "context.get_output_materializer(), should return the value instead.)"
            )
        if not self._local:
            # No rename on object stores: write in place; the metadata record commits it.
            try:
                yield uri
            except BaseException:
                self._remove(uri)
                raise
            return
        # Ends in ".tmp": never the shape of a folder new_uri hands out.
        staging = f"{uri}.partial-{uuid.uuid4().hex[:8]}.tmp"
        os.makedirs(staging)
        try:
            yield staging
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        try:
            if os.path.lexists(uri):  # appeared while we wrote: refuse rather than merge
                raise StoreError(f"Artifact folder {uri!r} appeared while it was written.")
            os.rename(staging, uri)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise

    def put(self, uri: str, files: Iterable[tuple[str, IO[bytes]]]) -> None:
        """Publish ``files`` (``(name relative to uri, readable binary file)``) as the
        artifact at the fresh ``uri``, through ``staged`` (all or nothing)."""
        with self.staged(uri) as target:
            for rel, src in files:
                if not rel or _DOT_OR_EMPTY_PART.search(rel):
                    raise StoreError(
                        f"Refusing to write {rel!r}: not a plain relative name. Name each "
                        "file by a relative path without empty, '.' or '..' parts, e.g. "
                        "'data/part-0.parquet'."
                    )
                dest = posixpath.join(target, rel)
                if self._local:
                    os.makedirs(os.path.dirname(dest), exist_ok=True)
                    with open(dest, "wb") as out:
                        shutil.copyfileobj(src, out)
                else:
                    with self.fs.open(dest, "wb") as out:
                        shutil.copyfileobj(src, out)

    # -- presence, content, removal --------------------------------------------------------

    def _fs_path(self, uri: str) -> str:
        return uri.removeprefix("file://") if self._local else uri

    def exists(self, uri: str) -> bool:
        """Whether ``uri`` holds at least one file (a folder with something in it)."""
        self.check(uri)
        if self._local:
            try:
                with os.scandir(self._fs_path(uri)) as entries:
                    return any(True for _ in entries)
            except OSError:  # gone, or not a folder
                return False
        fs = self.fs
        with contextlib.suppress(AttributeError):
            fs.invalidate_cache(uri)  # another process may have written it since we looked
        try:
            return bool(fs.find(uri, maxdepth=None, withdirs=False))
        except FileNotFoundError:
            return False

    def files(self, uri: str) -> list[tuple[str, int]]:
        """``(name relative to uri, size)`` of every file under ``uri``, in a stable order
        (depth first, by name), the same on every filesystem."""
        self.check(uri)
        if self._local:
            return [(rel, size) for rel, size, _ in _local_files(self._fs_path(uri), "")]
        fs = self.fs
        with contextlib.suppress(AttributeError):
            fs.invalidate_cache(uri)
        found = fs.find(uri, detail=True)
        root = fs._strip_protocol(uri).rstrip("/")
        out = [
            (path[len(root) :].lstrip("/"), int(info.get("size") or 0))
            for path, info in found.items()
        ]
        return sorted(out, key=lambda f: f[0].split("/"))

    def stats(self, uri: str, names: Iterable[str]) -> dict[str, tuple[int, int | None] | None]:
        """``(size, modification time in ns or None)`` of each named file of the artifact at
        ``uri``; None for a file that is gone. On the local disk one ``stat`` per file and no
        listing: this runs before every read."""
        self.check(uri)
        if self._local:
            base = self._fs_path(uri)
            found: dict[str, tuple[int, int | None] | None] = {}
            for name in names:
                try:
                    st = os.stat(os.path.join(base, name))
                except (FileNotFoundError, NotADirectoryError):
                    found[name] = None
                else:
                    found[name] = (st.st_size, st.st_mtime_ns)
            return found
        listed = dict(self.files(uri))
        return {n: (listed[n], None) if n in listed else None for n in names}

    def open(self, uri: str, name: str, mode: str = "rb") -> Any:
        """Open the file ``name`` of the artifact at ``uri`` (unbuffered on the local disk)."""
        self.check(uri)
        if self._local:
            return open(os.path.join(self._fs_path(uri), name), mode, buffering=0)
        return self.fs.open(posixpath.join(uri, name), mode)

    # -- the verified-files memo of artifact_stores._verify ---------------------------------

    def verified(self, key: tuple[str, str], stamp: Any) -> bool:
        """Whether files with this ``(size, mtime)`` stamp last matched ``key``, their
        ``(uri, content hash)``, in this process (see ``artifact_stores._verify.problem``)."""
        return stamp is not None and self._verified.get(key) == stamp

    def remember_verified(self, key: tuple[str, str], stamp: Any) -> None:
        """Record the stamp of files whose hash just matched ``key``; None forgets it."""
        if stamp is None:
            self._verified.pop(key, None)
            return
        if len(self._verified) >= 100_000:  # bounded for long history scans
            self._verified.clear()
        self._verified[key] = stamp

    # -- an artifact by its record, kept inline or as files: one accessor for both -----------

    def holds(self, record: ArtifactRecord) -> bool:
        """Whether the artifact can be read: kept inline with its record, or files at its URI
        (inside this store). Cache hits, exports and garbage collection ask this."""
        if record.inline is not None:
            return True
        return self.exists(record.uri)

    def artifact_files(self, record: ArtifactRecord) -> list[tuple[str, int]]:
        """``(name, size)`` of the artifact's files, as :meth:`files`; an inline artifact has
        one, ``INLINE_FILE``, and nothing in this store."""
        if record.inline is not None:
            return [(INLINE_FILE, len(record.inline))]
        return self.files(record.uri)

    def open_artifact_file(self, record: ArtifactRecord, name: str) -> Any:
        """Open one of :meth:`artifact_files` for reading, inline or stored alike."""
        if record.inline is not None:
            if name != INLINE_FILE:
                raise FileNotFoundError(2, "No such file in an inline artifact", name)
            return io.BytesIO(record.inline)
        return self.open(record.uri, name)

    def remove(self, uri: str) -> None:
        """Delete the artifact at ``uri`` (nothing if it is gone); refuses URIs outside the root."""
        self.check(uri)
        self._remove(uri)

    def _remove(self, uri: str) -> None:
        if self._local:
            shutil.rmtree(self._fs_path(uri), ignore_errors=True)
            # Its step and run folders too once empty; never the pipeline folder (a live run
            # may be creating its own run folder in it) or the root.
            parts = (self._relative(uri) or "").split("/")
            for depth in (3, 2):
                if len(parts) <= depth:
                    continue
                try:
                    os.rmdir(os.path.join(self.path, *parts[:depth]))
                except OSError:  # not empty (or gone)
                    break
            return
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm(uri, recursive=True)
        with contextlib.suppress(AttributeError):
            self.fs.invalidate_cache(uri)

    def leftovers(
        self, known: set[str], older_than: float, busy_runs: Iterable[str] = ()
    ) -> list[tuple[str, int]]:
        """``(uri, bytes)`` of folders this store made that no URI in ``known`` names: output
        and log folders of no record, and the ``.partial-*`` staging folders of crashed
        writes; only those untouched since ``older_than`` (a POSIX time), and none of runs
        named in ``busy_runs`` (still running), so a write in flight is never taken."""
        busy = {_safe(name) for name in busy_runs}
        fs = self.fs
        with contextlib.suppress(AttributeError):
            fs.invalidate_cache(self.path)
        try:
            found = fs.find(self.path, detail=True)
        except FileNotFoundError:
            return []
        root = fs._strip_protocol(self.path).rstrip("/")
        groups: dict[tuple[str, ...], list[int]] = {}
        newest: dict[tuple[str, ...], float] = {}
        for path, info in found.items():
            parts = tuple(path[len(root) :].strip("/").split("/"))
            if len(parts) < 4 or not _made_here(parts) or parts[1].rsplit("-", 1)[0] in busy:
                continue
            key = parts[:4]
            groups.setdefault(key, []).append(int(info.get("size") or 0))
            newest[key] = max(newest.get(key, 0.0), _mtime(info))
        out = []
        for key, sizes in sorted(groups.items()):
            uri = posixpath.join(self.path, *key)
            if uri not in known and newest[key] < older_than:
                out.append((uri, sum(sizes)))
        return out

    def __repr__(self) -> str:
        return f"ArtifactStore({self.path!r})"


_HASHED = re.compile(r".+-[0-9a-f]{10}")
_RUN_PART = re.compile(r".+-[0-9a-f]{8}")
_LEAF = re.compile(r"(.+-[0-9a-f]{10}(\.partial-[0-9a-f]{8}\.tmp)?|_logs)")


def _made_here(parts: tuple[str, ...]) -> bool:
    """Whether a path below the root is inside a folder ``new_uri``/``logs_uri``/``staged``
    made: <pipeline>/<run>/<step>/<output, _logs or staging>; nothing else is ever removed."""
    return bool(
        _HASHED.fullmatch(parts[0])
        and _RUN_PART.fullmatch(parts[1])
        and _HASHED.fullmatch(parts[2])
        and _LEAF.fullmatch(parts[3])
    )


def _mtime(info: Mapping[str, Any]) -> float:
    """Last change of a listed file: ``mtime`` (local), ``LastModified`` (S3), else now."""
    value = info.get("mtime", info.get("LastModified", info.get("last_modified")))
    if value is None:
        return float("inf")  # unknown age: never old enough to remove
    return value.timestamp() if hasattr(value, "timestamp") else float(value)


def _local_files(folder: str, prefix: str) -> list[tuple[str, int, str]]:
    """(relative name, size, path) of every file under ``folder``, depth first by name."""
    found = []
    with os.scandir(folder) as entries:
        for entry in sorted(entries, key=lambda e: e.name):
            rel = prefix + entry.name
            if entry.is_dir(follow_symlinks=False):
                found.extend(_local_files(entry.path, rel + "/"))
            else:
                found.append((rel, entry.stat().st_size, entry.path))
    return found
