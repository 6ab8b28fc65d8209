"""Keeps ``runs.heartbeat_at`` fresh while a run is in progress.

Crash detection (``post_execution._crashes``) checks the owner process directly when a run
was started on the same host; for runs of other hosts it can only see that the heartbeat has
stopped. One daemon thread per process beats for every run this process has in progress; a
run that is no longer ``running`` in the store drops out, and the thread ends when none is
left. A step that records its result also refreshes the heartbeat.
"""

from __future__ import annotations

import logging
import os
import threading
from datetime import datetime, timezone
from typing import Any

logger = logging.getLogger("runstack")

INTERVAL_S = 30.0

_lock = threading.Lock()
_runs: dict[tuple[int, int], tuple[Any, int]] = {}  # (id(store), run id) -> (store, run id)
_thread: threading.Thread | None = None
_wake = threading.Event()


def _after_fork() -> None:
    # A forked child has no heartbeat thread, and its parent's runs are not its to keep alive.
    global _lock, _thread
    _lock = threading.Lock()
    _runs.clear()
    _thread = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)


def watch(store: Any, run_id: int) -> None:
    """Beat for ``run_id`` until the store no longer shows it running."""
    global _thread
    with _lock:
        _runs[(id(store), run_id)] = (store, run_id)
        if _thread is None or not _thread.is_alive():
            _thread = threading.Thread(target=_loop, name="runstack-heartbeat", daemon=True)
            _thread.start()


def unwatch(store: Any, run_id: int) -> None:
    """Stop beating for ``run_id``: its run has ended in this process."""
    with _lock:
        _runs.pop((id(store), run_id), None)


def _loop() -> None:
    global _thread
    while not _wake.wait(INTERVAL_S):
        with _lock:
            watched = dict(_runs)
            if not watched:
                _thread = None  # checked under the lock, so watch() starts a new thread
                return
        now = datetime.now(timezone.utc)
        for key, (store, run_id) in watched.items():
            try:
                still_running = store.touch_run(run_id, now)
            except Exception as e:  # a missed beat is harmless; never disturb the run
                logger.debug("heartbeat for run #%s failed: %s", run_id, e)
                continue
            if not still_running:
                with _lock:
                    _runs.pop(key, None)
