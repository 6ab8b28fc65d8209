"""Whether an artifact's files are still the ones recorded when it was written.

Right after a materializer writes an output, the runner records with the artifact every file
it wrote with its size (the *manifest*) and an XXH3-128 *content hash* over the files' names,
sizes and bytes. Later:

- **Cache reuse** checks the manifest: every recorded file present with its recorded size (one
  listing, no bytes read). A truncated file or a multi-file artifact missing one file is not
  reused.
- **Reading** (``read()``, a step loading its input, ``runstack artifact read``) checks the
  manifest, then the content hash when the artifact is at most ``RUNSTACK_VERIFY_MAX_BYTES``
  (default 64 MiB: hashing runs at several GB/s, a few ms beside the read itself), and always
  with ``read(verify=True)`` and ``runstack artifact verify``.

A mismatch is an :class:`~runstack.exceptions.ArtifactCorruptedError`, never data returned as
if it were fine; an artifact whose folder is gone is an ``ArtifactNotFoundError``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from runstack.exceptions import ArtifactCorruptedError, ArtifactNotFoundError
from runstack.models import INLINE_FILE

if TYPE_CHECKING:
    from runstack.artifact_stores._store import ArtifactStore
    from runstack.models import ArtifactRecord

# Artifacts bigger than this (in bytes) get no content hash: hashing reads the files back once
# (XXH3-128 runs at several GB/s, so 100 MB costs ~15 ms), and above this the cost is not worth
# it. Such an artifact enters downstream cache keys by its identity and is checked by its
# manifest only.
DEFAULT_HASH_LIMIT = 512 * 1024 * 1024
HASH_LIMIT_ENV = "RUNSTACK_CONTENT_HASH_MAX_BYTES"
# Reads verify the content hash of artifacts up to this size unless asked to (verify=True).
DEFAULT_VERIFY_LIMIT = 64 * 1024 * 1024
VERIFY_LIMIT_ENV = "RUNSTACK_VERIFY_MAX_BYTES"
_BLOCK = 1024 * 1024
GONE = "its folder is gone or empty"
_CHANGED = "its content no longer matches the hash recorded when it was written"
_RACY_NS = 2_000_000_000  # files changed this recently are hashed on every check


def _limit(variable: str, default: int) -> int:
    raw = os.environ.get(variable)
    try:
        return int(raw) if raw else default
    except ValueError:
        return default


def manifest(store: ArtifactStore, uri: str) -> dict[str, int]:
    """``{name relative to uri: size}`` of every file the artifact at ``uri`` holds."""
    return dict(store.files(uri))


def content_hash(
    store: ArtifactStore,
    uri: str,
    data_type: str,
    materializer: str,
    files: dict[str, int] | None = None,
    limit: int | None = None,
    inline: bytes | None = None,
) -> str | None:
    """XXH3-128 over the artifact's files (names, sizes and bytes), its type and materializer.

    ``inline``: the bytes of an artifact kept with its record in the metadata store, hashed as
    the one file ``INLINE_FILE`` it would be on disk, so a value has one hash however it is
    stored (and cache keys and hits cross the boundary).

    A fast non-cryptographic 128-bit hash: artifacts are the user's own data, not adversarial
    input, and SHA-256 cost more than writing a large array did. ``None`` when the files
    together exceed ``limit`` (default: ``RUNSTACK_CONTENT_HASH_MAX_BYTES``, 512 MiB).
    """
    import xxhash

    if limit is None:
        limit = _limit(HASH_LIMIT_ENV, DEFAULT_HASH_LIMIT)
    if inline is not None:
        return None if len(inline) > limit else _inline_hash(data_type, materializer, inline)
    if files is None:
        files = manifest(store, uri)
    if sum(files.values()) > limit:
        return None
    h = xxhash.xxh3_128(f"{data_type}\0{materializer}\0".encode())
    buffer = bytearray(0)
    # Depth first, by name: the order store.files() lists them in on every filesystem.
    for rel in sorted(files, key=lambda name: name.split("/")) if len(files) > 1 else files:
        size = files[rel]
        h.update(f"{rel}\0{size}\0".encode())
        with store.open(uri, rel, "rb") as f:
            if size <= _BLOCK:
                h.update(f.read())  # also whatever was appended since: the hash differs
                continue
            if not buffer:
                buffer = bytearray(_BLOCK)
            view = memoryview(buffer)
            while n := f.readinto(buffer):
                h.update(view[:n])
    return h.hexdigest()


def _inline_hash(data_type: str, materializer: str, inline: bytes) -> str:
    """The hash :func:`content_hash` gives the same bytes stored as the file ``INLINE_FILE``."""
    # One call over the bytes ``content_hash`` feeds its hasher piece by piece: the same hash.
    # (A history scan checks one value per run: no import statement here, ~0.1 us each.)
    hexdigest = _xxh3_128_hexdigest or _load_xxh3()
    return hexdigest(f"{data_type}\0{materializer}{_INLINE_HEAD}{len(inline)}\0".encode() + inline)


_INLINE_HEAD = f"\0{INLINE_FILE}\0"
_xxh3_128_hexdigest: Callable[[bytes], str] | None = None


def _load_xxh3() -> Callable[[bytes], str]:
    """xxhash's one-call XXH3-128, imported on first use (not with this module)."""
    global _xxh3_128_hexdigest
    import xxhash

    _xxh3_128_hexdigest = xxhash.xxh3_128_hexdigest
    return _xxh3_128_hexdigest


def manifest_problem(store: ArtifactStore, art: ArtifactRecord) -> str | None:
    """Why the artifact's files are not those recorded (cheap: no bytes read), or None.

    Also None for an artifact recorded without a manifest (before schema 0009) that still
    holds files: there is nothing cheaper to compare.
    """
    return _check_manifest(store, art)[0]


def _check_manifest(store: ArtifactStore, art: ArtifactRecord) -> tuple[str | None, Any]:
    """(problem or None, what the files looked like: a key for the verified-files memo)."""
    if art.inline is not None:  # kept with its record: no files, no URI to confine
        return None, None
    store.check(art.uri, art.label)
    if not art.files:
        return (None, None) if store.exists(art.uri) else (GONE, None)
    found = store.stats(art.uri, art.files)
    missing = sorted(name for name, st in found.items() if st is None)
    if missing:
        if len(missing) == len(found) and not store.exists(art.uri):
            return GONE, None
        return f"file(s) {', '.join(missing)} missing", None
    for name, size in sorted(art.files.items()):
        actual = found[name][0]  # type: ignore[index]
        if actual != size:
            return f"{name} is {actual:,} bytes, {size:,} when written", None
    stamp = tuple(found.values())
    return None, None if any(st[1] is None for st in stamp) else stamp  # type: ignore[index]


def problem(store: ArtifactStore, art: ArtifactRecord, *, full: bool | None = None) -> str | None:
    """Why the artifact's files are not those recorded, or None when they are.

    The manifest always; the content hash when ``full`` is true, or (``full=None``) when the
    artifact is at most ``RUNSTACK_VERIFY_MAX_BYTES``. The cache asks this of a candidate
    before reusing it, and reads ask it (through :func:`verify`) before loading. Within one
    process, local files whose hash matched are not hashed again by ``full=None`` checks
    while their sizes and modification times stay the same (as ``git status`` trusts its
    index); ``full=True`` always reads every byte.
    """
    found, stamp = _check_manifest(store, art)
    if found is not None or art.content_hash is None:
        return found
    if art.inline is not None:
        return _inline_problem(art)
    memo_key = (art.uri, art.content_hash)
    if full is None and store.verified(memo_key, stamp):
        return None
    files = art.files if art.files else manifest(store, art.uri)
    size = sum(files.values())
    if full is None:
        full = size <= _limit(VERIFY_LIMIT_ENV, DEFAULT_VERIFY_LIMIT)
    if not full:
        return None
    started = time.time_ns()
    try:
        actual = content_hash(store, art.uri, art.data_type, art.materializer, files, size)
    except FileNotFoundError as e:  # removed while we read
        return f"{e.filename or e} vanished while it was verified"
    if actual != art.content_hash:
        store.remember_verified(memo_key, None)
        return _CHANGED
    # As git does for its index: a file changed within the clock's granularity of the check
    # may keep its mtime, so only files older than that are trusted by their stamp.
    if stamp is not None and all(mtime < started - _RACY_NS for _size, mtime in stamp):
        store.remember_verified(memo_key, stamp)
    return None


def _inline_problem(art: ArtifactRecord) -> str | None:
    """Whether a value kept with its record still hashes as it did (a few KB: always compared)."""
    if art.content_hash is None or art.inline is None:
        return None
    actual = _inline_hash(art.data_type, art.materializer, art.inline)
    return None if actual == art.content_hash else _CHANGED


def verify_inline(art: ArtifactRecord) -> None:
    """:func:`verify` for a value kept with its record: no artifact store needed."""
    found = _inline_problem(art)
    if found is not None:
        raise ArtifactCorruptedError(
            f"{art.label} (kept in the metadata store) is corrupted: {found}. Its "
            "record was changed after it was written; re-run the step that produced it (with "
            "caching off) to write it again."
        )


def verify(store: ArtifactStore, art: ArtifactRecord, *, full: bool | None = None) -> None:
    """Check the artifact's files against its record (see :func:`problem`) before a read.

    Raises ``ArtifactNotFoundError`` when its folder is gone and ``ArtifactCorruptedError``
    when anything else differs.
    """
    found = problem(store, art, full=full)
    if found == GONE:
        raise ArtifactNotFoundError(
            f"{art.label} at {art.uri} is missing from the artifact store. It was "
            "deleted or moved after it was recorded; re-run the step that produced it (with "
            "caching off) to write it again."
        )
    if found is not None:
        raise ArtifactCorruptedError(
            f"{art.label} at {art.uri} is corrupted: {found}. Its files were changed "
            "after they were recorded (edited, truncated, or partly deleted); it is not read "
            "or reused. Re-run the step that produced it (with caching off) to write it again."
        )
