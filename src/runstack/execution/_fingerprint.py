"""Fingerprints of step code, for cache keys."""

from __future__ import annotations

import hashlib
import inspect
import marshal
from typing import Any

_cache: dict[Any, str] = {}


def code_fingerprint(step_class: type) -> str:
    """Hash of the step's source (the class for class-based steps, else the function).

    Falls back to the function's bytecode where no source is available (REPL, exec).
    """
    found = _cache.get(step_class)
    if found is not None:
        return found
    func = step_class.entrypoint_function()  # type: ignore[attr-defined]
    target: Any = (
        func
        if "entrypoint" in step_class.__dict__
        and isinstance(step_class.__dict__["entrypoint"], staticmethod)
        else step_class
    )
    try:
        payload = inspect.getsource(target).encode()
    except (OSError, TypeError):
        code = func.__code__
        payload = marshal.dumps(code.co_code) + repr(code.co_consts).encode()
    digest = hashlib.sha256(payload).hexdigest()
    _cache[step_class] = digest
    return digest
