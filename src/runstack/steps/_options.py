"""How a step is executed: retries, a time limit and scheduling resources. Data only."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from runstack.exceptions import DefinitionError

# Ray's built-in resource names; anything else is a custom resource (a positive number).
_BUILTIN_RESOURCES = ("cpus", "gpus", "memory")
_MEMORY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]i?B|B)?\s*$", re.IGNORECASE)
_UNITS = {
    "b": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
}
OPTION_NAMES = ("retries", "retry_delay", "retry_backoff", "timeout", "resources")


def parse_memory(value: Any, where: str) -> int:
    """Bytes from ``4GiB``, ``512MB``, ``1e9`` or an int."""
    if isinstance(value, bool):
        raise DefinitionError(
            f"{where}: memory must be a size like '4GiB' or bytes, got {value!r}."
        )
    if isinstance(value, (int, float)) and value > 0 and math.isfinite(value):
        return int(value)
    m = _MEMORY.match(value) if isinstance(value, str) else None
    if m is None or float(m.group(1)) <= 0:
        raise DefinitionError(
            f"{where}: memory must be a positive size like '4GiB', '512MB' or a number of bytes, "
            f"got {value!r}."
        )
    return int(float(m.group(1)) * _UNITS[(m.group(2) or "b").lower()])


@dataclass(frozen=True)
class ExecutionOptions:
    """``@step(retries=2, retry_delay=1, retry_backoff=2, timeout=60, resources={...})``.

    - ``retries``: extra attempts after a failing one; each attempt is recorded, the last counts.
    - ``retry_delay`` seconds before the first retry, multiplied by ``retry_backoff`` each time.
    - ``timeout`` seconds an attempt may run before it fails with ``StepTimeoutError``.
    - ``resources``: ``cpus``, ``gpus``, ``memory`` (``"4GiB"``) and custom Ray resources.
      Ray schedules by them; the ``parallel`` orchestrator uses ``cpus`` as the slot weight.
    """

    retries: int = 0
    retry_delay: float = 0.0
    retry_backoff: float = 1.0
    timeout: float | None = None
    resources: Mapping[str, float] = field(default_factory=dict)

    @classmethod
    def make(cls, where: str, **given: Any) -> ExecutionOptions:
        """Validated options; ``where`` names the step in error messages."""
        unknown = sorted(set(given) - set(OPTION_NAMES))
        if unknown:
            raise DefinitionError(
                f"{where}: unknown execution option(s) {unknown}; the options are "
                f"{', '.join(OPTION_NAMES)}."
            )
        retries = given.get("retries", 0)
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise DefinitionError(f"{where}: retries must be an int >= 0, got {retries!r}.")
        delay = _number(given.get("retry_delay", 0.0), "retry_delay", where, minimum=0)
        backoff = _number(given.get("retry_backoff", 1.0), "retry_backoff", where, minimum=1)
        timeout = given.get("timeout")
        if timeout is not None:
            timeout = _number(timeout, "timeout", where, minimum=0)
            if timeout == 0:
                raise DefinitionError(f"{where}: timeout must be > 0 seconds (or None), got 0.")
        raw = given.get("resources") or {}
        if not isinstance(raw, Mapping):
            raise DefinitionError(
                f"{where}: resources must be a mapping like {{'cpus': 2, 'gpus': 1, "
                f"'memory': '4GiB'}}, got {raw!r}."
            )
        resources: dict[str, float] = {}
        for key, value in raw.items():
            if not isinstance(key, str) or not key:
                raise DefinitionError(f"{where}: resource names are strings, got {key!r}.")
            if key in ("cpu", "gpu", "num_cpus", "num_gpus", "mem"):
                fix = {"cpu": "cpus", "num_cpus": "cpus", "gpu": "gpus", "num_gpus": "gpus"}
                raise DefinitionError(
                    f"{where}: unknown resource {key!r}; did you mean "
                    f"{fix.get(key, 'memory')!r}? Built-in resources are "
                    f"{', '.join(_BUILTIN_RESOURCES)}; other names are custom Ray resources."
                )
            if key == "memory":
                resources[key] = parse_memory(value, where)
            else:
                resources[key] = _number(value, f"resources[{key!r}]", where, minimum=0)
        return cls(retries, delay, backoff, timeout, resources)

    def updated(self, where: str, **changes: Any) -> ExecutionOptions:
        """These options with ``changes`` applied (validated the same way)."""
        merged = {**self.as_dict(), **changes}
        return ExecutionOptions.make(where, **merged) if changes else replace(self)

    def as_dict(self) -> dict[str, Any]:
        # Not dataclasses.asdict: its deep copy was ~0.1 ms of every step's record.
        d = {f: getattr(self, f) for f in self.__dataclass_fields__}
        d["resources"] = dict(self.resources)
        return d

    def delay_before(self, attempt: int) -> float:
        """Seconds to wait before attempt ``attempt`` (2 = the first retry)."""
        return self.retry_delay * self.retry_backoff ** max(attempt - 2, 0)


def _number(value: Any, name: str, where: str, *, minimum: float) -> float:
    ok = (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value >= minimum
    )
    if not ok:
        raise DefinitionError(f"{where}: {name} must be a number >= {minimum}, got {value!r}.")
    return float(value)


DEFAULT_OPTIONS = ExecutionOptions()
