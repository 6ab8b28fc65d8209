"""``Output(...)``: the named, typed outputs of a step."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


class Output:
    """Declares a step's named outputs, in order: ``-> Output(model=Model, accuracy=float)``."""

    __slots__ = ("items",)

    def __init__(self, **outputs: Any) -> None:
        if not outputs:
            raise TypeError("Output() needs at least one name=type pair, e.g. Output(count=int).")
        self.items: tuple[tuple[str, Any], ...] = tuple(outputs.items())

    def __iter__(self) -> Iterator[tuple[str, Any]]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def __call__(self) -> None:  # lets typing accept Output(...) inside string annotations
        raise TypeError("Output(...) is an annotation; it cannot be called.")

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={getattr(v, '__name__', v)}" for k, v in self.items)
        return f"Output({inner})"
