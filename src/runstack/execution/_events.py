"""Progress events a run emits, and the default listener that reports them."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

logger = logging.getLogger("runstack")

EventKind = Literal[
    "run_started",
    "run_completed",
    "run_failed",
    "step_started",
    "step_completed",
    "step_cached",
    "step_failed",
    "step_retrying",
]


@dataclass(frozen=True)
class RunEvent:
    kind: EventKind
    pipeline: str
    run: str
    step: str | None = None
    entrypoint: str | None = None
    duration: float | None = None
    detail: str | None = None  # error text, or where a cached step's outputs came from


Listener = Callable[[RunEvent], None]


def log_listener(event: RunEvent) -> None:
    """Reports events through the ``runstack`` logger."""
    if event.kind == "run_started":
        logger.info("Running pipeline %s as run %s", event.pipeline, event.run)
    elif event.kind in ("run_completed", "run_failed"):
        logger.info("Run %s %s", event.run, event.kind.removeprefix("run_"))
    elif event.kind == "step_completed":
        logger.info("  %s: ran in %.3fs", event.step, event.duration or 0.0)
    elif event.kind == "step_cached":
        logger.info("  %s: reused %s", event.step, event.detail)
    elif event.kind == "step_retrying":
        logger.info("  %s: %s", event.step, event.detail)
    elif event.kind == "step_failed":
        logger.info("  %s: failed: %s", event.step, event.detail)
