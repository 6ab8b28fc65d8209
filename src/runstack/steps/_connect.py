"""The graph builder that step calls report to while a pipeline function runs."""

from __future__ import annotations

import contextvars
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from runstack.steps._base_step import BaseStep


class Builder(Protocol):
    def connect(self, step: BaseStep, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any: ...


_current: contextvars.ContextVar[Builder | None] = contextvars.ContextVar(
    "runstack_graph_builder", default=None
)


def current_builder() -> Builder | None:
    return _current.get()


def set_builder(builder: Builder | None) -> contextvars.Token[Builder | None]:
    return _current.set(builder)


def reset_builder(token: contextvars.Token[Builder | None]) -> None:
    _current.reset(token)
