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
from typing import TYPE_CHECKING

from runstack.exceptions import ArtifactCorruptedError, ArtifactNotFoundError

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
) -> str | None:
    """XXH3-128 over the artifact's files (names, sizes and bytes), its type and materializer.

    A fast non-cryptographic 128-bit hash: artifacts are the user's own data, not adversarial
    input, and SHA-256 cost more than writing a large array did. ``None`` when the files
    together exceed ``limit`` (default: ``RUNSTACK_CONTENT_HASH_MAX_BYTES``, 512 MiB).
    """
    import xxhash

    if files is None:
        files = manifest(store, uri)
    if limit is None:
        limit = _limit(HASH_LIMIT_ENV, DEFAULT_HASH_LIMIT)
    if sum(files.values()) > limit:
        return None
    h = xxhash.xxh3_128(f"{data_type}\0{materializer}\0".encode())
    buffer = bytearray(min(_BLOCK, max(files.values(), default=1) or 1))
    view = memoryview(buffer)
    # Depth first, by name: the order store.files() lists them in on every filesystem.
    for rel in sorted(files, key=lambda name: name.split("/")):
        h.update(f"{rel}\0{files[rel]}\0".encode())
        with store.open(uri, rel, "rb") as f:
            while n := f.readinto(buffer):
                h.update(view[:n])
    return h.hexdigest()


def manifest_problem(store: ArtifactStore, art: ArtifactRecord) -> str | None:
    """Why the artifact's files are not those recorded (cheap: one listing), or None.

    Also None for an artifact recorded without a manifest (before schema 0009) that still
    holds files: there is nothing cheaper to compare.
    """
    store.check(art.uri, f"Artifact #{art.id}")
    try:
        found = manifest(store, art.uri)
    except FileNotFoundError:
        found = {}
    if not found:
        return GONE
    if art.files is None:
        return None
    missing = sorted(set(art.files) - set(found))
    if missing:
        return f"file(s) {', '.join(missing)} missing"
    for name, size in sorted(art.files.items()):
        if found[name] != size:
            return f"{name} is {found[name]:,} bytes, {size:,} when written"
    return None


def problem(store: ArtifactStore, art: ArtifactRecord, *, full: bool | None = None) -> str | None:
    """Why the artifact's files are not those recorded, or None when they are.

    The manifest always; the content hash when ``full`` is true, or (``full=None``) when the
    artifact is at most ``RUNSTACK_VERIFY_MAX_BYTES``. The cache asks this of a candidate
    before reusing it, and reads ask it (through :func:`verify`) before loading.
    """
    found = manifest_problem(store, art)
    if found is not None or art.content_hash is None:
        return found
    files = art.files if art.files is not None else manifest(store, art.uri)
    size = sum(files.values())
    if full is None:
        full = size <= _limit(VERIFY_LIMIT_ENV, DEFAULT_VERIFY_LIMIT)
    if not full:
        return None
    try:
        actual = content_hash(store, art.uri, art.data_type, art.materializer, files, size)
    except FileNotFoundError as e:  # removed while we read
        return f"{e.filename or e} vanished while it was verified"
    if actual != art.content_hash:
        return "its content no longer matches the hash recorded when it was written"
    return None


def verify(store: ArtifactStore, art: ArtifactRecord, *, full: bool | None = None) -> None:
    """Check the artifact's files against its record (see :func:`problem`) before a read.

    Raises ``ArtifactNotFoundError`` when its folder is gone and ``ArtifactCorruptedError``
    when anything else differs.
    """
    found = problem(store, art, full=full)
    if found == GONE:
        raise ArtifactNotFoundError(
            f"Artifact #{art.id} at {art.uri} is missing from the artifact store. It was "
            "deleted or moved after it was recorded; re-run the step that produced it (with "
            "caching off) to write it again."
        )
    if found is not None:
        raise ArtifactCorruptedError(
            f"Artifact #{art.id} at {art.uri} is corrupted: {found}. Its files were changed "
            "after they were recorded (edited, truncated, or partly deleted); it is not read "
            "or reused. Re-run the step that produced it (with caching off) to write it again."
        )
