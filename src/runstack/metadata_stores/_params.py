"""The canonical encoding of step parameter values, so that filters compare them in the database.

A parameter value is stored as compact JSON with sorted keys; numbers that are whole are written
as integers (a ``float`` field set to ``1`` is dumped as ``1.0`` by pydantic, while a user
filtering on it writes ``1``). Encodings longer than the column are replaced by their SHA-256, so
equality still works for any value. Changing this encoding needs a migration that re-encodes
``step_parameters.value``.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from typing import Any

MAX_LENGTH = 255


def _normal(value: Any) -> Any:
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    if isinstance(value, Mapping):
        return {str(k): _normal(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_normal(v) for v in value]
    return value


def encode_value(value: Any) -> str:
    """The stored form of one parameter value (JSON-compatible, as the step config dumps it)."""
    text = json.dumps(
        _normal(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    )
    if len(text) > MAX_LENGTH:
        return "sha256:" + hashlib.sha256(text.encode()).hexdigest()
    return text


def parameter_rows(
    step_id: int, run_id: int, step_name: str, parameters: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """``step_parameters`` rows for one step's top-level parameters."""
    return [
        {
            "step_id": step_id,
            "run_id": run_id,
            "step_name": step_name,
            "name": name,
            "value": encode_value(value),
        }
        for name, value in parameters.items()
    ]
