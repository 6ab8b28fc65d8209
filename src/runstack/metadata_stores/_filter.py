"""``RunFilter``: which runs a history listing returns, as one value."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from runstack.exceptions import StoreError, expect_name
from runstack.metadata_stores._tags import check_tags
from runstack.models import ExecutionStatus


@dataclass(frozen=True)
class RunFilter:
    """Which runs a listing returns, in what order and which page; every condition given must
    hold, and the database does the filtering.

    ``status`` (e.g. ``"failed"``), ``name_prefix``, a start-time window ``started_after <=
    start < started_before`` (aware datetimes; naive means UTC), and ``parameters`` mapping
    ``"<step>.<parameter>"`` to the value that parameter had, e.g. ``{"trainer.lr": 0.1}``
    (values compare as JSON: ``1`` matches ``1.0``), and ``tags`` the run carries now, e.g.
    ``{"exp": "lr-sweep"}``. Runs come oldest first unless
    ``newest_first``; ``limit`` and ``offset`` page them.
    """

    status: ExecutionStatus | str | None = None
    name_prefix: str | None = None
    started_after: datetime | None = None
    started_before: datetime | None = None
    parameters: Mapping[str, Any] | None = None
    tags: Mapping[str, str] | None = None
    limit: int | None = None
    offset: int = 0
    newest_first: bool = False

    def __post_init__(self) -> None:
        # Bad filters fail here, where they are written, not when a query runs (and never
        # reach the driver as a wrongly typed parameter with SQL in its error).
        for arg, value in (("limit", self.limit), ("offset", self.offset)):
            if value is not None and (type(value) is not int or value < 0):
                raise TypeError(f"get_runs({arg}=...) takes an int >= 0, not {value!r}.")
        if self.name_prefix is not None:
            expect_name(self.name_prefix, "get_runs(name_prefix=...)")
        if self.parameters is not None and not isinstance(self.parameters, Mapping):
            raise TypeError(
                "get_runs(parameters=...) takes a mapping of '<step>.<parameter>' to a value, "
                f"e.g. {{'trainer.lr': 0.1}}, not {type(self.parameters).__name__}."
            )
        if self.status is not None and not isinstance(self.status, ExecutionStatus):
            try:
                object.__setattr__(self, "status", ExecutionStatus(self.status))
            except ValueError:
                raise StoreError(
                    f"Unknown status {self.status!r}; expected one of "
                    f"{[s.value for s in ExecutionStatus]}."
                ) from None
        if self.tags is not None:
            object.__setattr__(self, "tags", check_tags(self.tags))
        for key in self.parameters or {}:
            step_name, dot, name = str(key).partition(".")
            if not (isinstance(key, str) and dot and step_name and name):
                raise StoreError(
                    f"Parameter filters are keyed '<step>.<parameter>', e.g. "
                    f"{{'trainer.lr': 0.1}}; got {key!r}."
                )

    @property
    def narrows(self) -> bool:
        """Whether any condition or page leaves runs out (ordering alone does not)."""
        return bool(
            self.status
            or self.name_prefix
            or self.started_after
            or self.started_before
            or self.parameters
            or self.tags
            or self.limit is not None
            or self.offset
        )
