"""Crashed runs as readers see them: derived when reading, never written by a view.

A run left "running" by a process that died reads as failed, with the reason, ending when it
was last seen alive; the rule is ``metadata_stores._liveness`` (shared with ``launch``, which
records what it finds, as ``runstack run reconcile`` does).
"""

from __future__ import annotations

from runstack.metadata_stores._liveness import (
    STALE_AFTER,
    Crash,
    as_seen,
    crash_of,
    process_gone,
    reconcile,
    this_host,
    this_namespace,
)

__all__ = [
    "STALE_AFTER",
    "Crash",
    "as_seen",
    "crash_of",
    "process_gone",
    "reconcile",
    "this_host",
    "this_namespace",
]
