"""Cache keys and content hashes.

A step's cache key is the SHA-256 of its *components* (see docs/caching.md): pipeline and step
name, code (:mod:`runstack.execution._fingerprint`), config, the content hash of every input,
and the materializer of every output. The components are stored with the step, beside a
``decision`` entry (not part of the key) that says what the runner decided and why, so a step's
cache behaviour can be explained later.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from typing import TYPE_CHECKING, Any

from runstack.exceptions import ArtifactNotFoundError
from runstack.execution._fingerprint import code_components
from runstack.materializers._base import type_path
from runstack.models import ArtifactRecord

if TYPE_CHECKING:
    from runstack.artifact_stores import ArtifactStore
    from runstack.execution._plan import StepPlan

# Bump when the components change shape; older keys then simply never match.
KEY_FORMAT = 1

# Artifacts bigger than this (in bytes) get no content hash: hashing reads the files back once
# (XXH3-128 runs at several GB/s, so 100 MB costs ~15 ms), and above this the cost is not worth
# it. Such an artifact enters downstream keys by its identity: always safe, only less reusable.
DEFAULT_HASH_LIMIT = 512 * 1024 * 1024
HASH_LIMIT_ENV = "RUNSTACK_CONTENT_HASH_MAX_BYTES"
_BLOCK = 1024 * 1024


def components(plan_name: str, sp: StepPlan, inputs: dict[str, ArtifactRecord]) -> dict[str, Any]:
    """Everything the cache key covers, as a JSON-able dict."""
    return {
        "format": KEY_FORMAT,
        "pipeline": plan_name,
        "step": sp.slot,
        "code": code_components(type(sp.step)),
        "parameters": sp.parameters,
        "inputs": {
            name: a.content_hash or f"artifact:{a.id}" for name, a in sorted(inputs.items())
        },
        "materializers": {
            name: type_path(m) if m is not None else "by-value-type"
            for name, m in sorted(sp.materializers.items())
        },
    }


def digest(parts: dict[str, Any]) -> str:
    return hashlib.sha256(
        json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str).encode()
    ).hexdigest()


def with_decision(parts: dict[str, Any], decision: dict[str, Any]) -> dict[str, Any]:
    """The components as stored: the key's parts plus why the step ran or was reused."""
    return {**parts, "decision": decision}


def disabled_decision(sp: StepPlan) -> dict[str, Any]:
    step = sp.step
    if step.caching_requested:
        by = "pipeline (enable_cache=False)"
    elif step.ENABLE_CACHE is False:
        by = "step (enable_cache=False)"
    else:
        by = "step: it takes a StepContext (pass enable_cache=True to cache it)"
    return {"outcome": "disabled", "by": by}


def artifact_present(store: ArtifactStore, record: ArtifactRecord) -> bool:
    """Whether an artifact can be reused: it is kept inline with its record, or it lies
    inside the store and holds files.

    A URI outside the store's root (an edited record, another stack's store) is never reused.
    """
    try:
        store.check(record.uri)
    except ArtifactNotFoundError as e:
        logging.getLogger("runstack").warning("Not reusing a cached artifact: %s", e)
        return False
    return store.holds(record)


INLINE_LIMIT_ENV = "RUNSTACK_INLINE_MAX_BYTES"


def inline_limit(materializer: type) -> int:
    """Up to how many bytes an output written by ``materializer`` is kept inline in the
    metadata store (0: never). A materializer opts in by setting ``INLINE_LIMIT`` on its own
    class (a subclass must opt in again: it may write its files some other way);
    ``$RUNSTACK_INLINE_MAX_BYTES`` overrides the limit, 0 keeps every artifact a file."""
    limit = int(materializer.__dict__.get("INLINE_LIMIT", 0))
    raw = os.environ.get(INLINE_LIMIT_ENV)
    if limit and raw:
        try:
            return max(0, int(raw))
        except ValueError:
            return limit
    return limit


def _hash_limit() -> int:
    raw = os.environ.get(HASH_LIMIT_ENV)
    try:
        return int(raw) if raw else DEFAULT_HASH_LIMIT
    except ValueError:
        return DEFAULT_HASH_LIMIT


def content_hash(
    store: ArtifactStore, uri: str, data_type: str, materializer: str, inline: bytes | None = None
) -> str | None:
    """XXH3-128 over the artifact's files (names and bytes), its type and materializer.

    ``inline``: the bytes of an artifact kept in the metadata store, hashed as the one file
    ``INLINE_FILE`` it would be on disk, so a value has one hash however it is stored.

    A fast non-cryptographic 128-bit hash: artifacts are the user's own data, not adversarial
    input, and SHA-256 cost more than writing a large array did. ``None`` when the files
    together exceed the size limit. Called once, right after the artifact is written, while
    its files are still in the page cache.
    """
    import xxhash

    limit = _hash_limit()
    record = ArtifactRecord(0, uri, data_type, materializer, 0, inline=inline)
    files = store.artifact_files(record)
    if sum(size for _, size in files) > limit:
        return None
    h = xxhash.xxh3_128(f"{data_type}\0{materializer}\0".encode())
    buffer = bytearray(min(_BLOCK, max((size for _, size in files), default=1) or 1))
    view = memoryview(buffer)
    for rel, size in files:
        h.update(f"{rel}\0{size}\0".encode())
        with store.open_artifact_file(record, rel) as f:
            while n := f.readinto(buffer):
                h.update(view[:n])
    return h.hexdigest()
