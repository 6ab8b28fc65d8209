"""Cache keys (content hashes are computed in ``runstack.artifact_stores._verify``).

A step's cache key is the SHA-256 of its *components* (see docs/caching.md): pipeline and step
name, code (:mod:`runstack.execution._fingerprint`), config, the content hash of every input,
and the materializer of every output. The components are stored with the step, beside a
``decision`` entry (not part of the key) that says what the runner decided and why, so a step's
cache behaviour can be explained later.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import TYPE_CHECKING, Any

from runstack.execution._fingerprint import code_components
from runstack.materializers._base import type_path

if TYPE_CHECKING:
    from runstack.execution._plan import StepPlan
    from runstack.models import ArtifactRecord

# Bump when the components change shape; older keys then simply never match.
KEY_FORMAT = 1


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
