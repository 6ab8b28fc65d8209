"""Finds runs left "running" by a process that died (kill -9, power loss, OOM killer).

A run records the host and pid of the process that started it, and that process refreshes
the run's heartbeat while it works (``execution._heartbeat``). A run still marked running is
*crashed* when

* it was started on this host and its process is gone, is a zombie, or is a newer process
  that reuses the pid (its start time is after the run's start); or
* it was started on another host (where pids mean nothing to us) and its heartbeat is older
  than :data:`STALE_AFTER`.

Crashed runs are marked failed, with an error that says so, when a view looks at them and by
``runstack run reconcile``.
"""

from __future__ import annotations

import functools
import os
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from runstack.metadata_stores import SQLMetadataStore

STALE_AFTER = timedelta(minutes=5)  # ten missed heartbeats (they come every 30 s)


@functools.lru_cache(maxsize=1)
def this_host() -> str:
    return socket.gethostname()


@functools.lru_cache(maxsize=1)
def _boot_time() -> float | None:
    try:
        with open("/proc/stat") as f:
            for line in f:
                if line.startswith("btime "):
                    return float(line.split()[1])
    except OSError:
        pass
    return None


def _proc_state(pid: int) -> tuple[str, float | None] | None:
    """(state letter, start time as a UNIX timestamp) from /proc; None where there is no /proc."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            raw = f.read()
    except FileNotFoundError:
        return ("gone", None)
    except OSError:
        return None
    fields = raw[raw.rfind(")") + 2 :].split()  # the command name may contain spaces
    boot = _boot_time()
    start = None
    if boot is not None and len(fields) > 19:
        start = boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")
    return (fields[0], start)


def process_gone(pid: int, started_before: datetime | None = None) -> bool:
    """Whether process ``pid`` of this host has ended (or the pid now belongs to another)."""
    if pid <= 0:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass  # alive, owned by another user
    except OSError:
        return False
    state = _proc_state(pid)
    if state is None:
        return False
    letter, start = state
    if letter in ("gone", "Z", "X"):
        return True
    # A process that started after the run did cannot be the run's owner: the pid was reused.
    return bool(
        started_before is not None
        and start is not None
        and start > started_before.timestamp() + 2.0
    )


@dataclass(frozen=True)
class Crash:
    run_id: int
    run_name: str
    reason: str


def crash_reason(
    host: str | None,
    pid: int | None,
    heartbeat_at: datetime | None,
    started_at: datetime | None,
    now: datetime | None = None,
) -> str | None:
    """Why a run marked running is in fact dead, or None if it may still be running."""
    now = now or datetime.now(timezone.utc)
    if host == this_host() and pid is not None:
        if process_gone(pid, started_at):
            return (
                f"crashed: its process (pid {pid} on {host}) ended without finishing the run "
                "(killed, or the interpreter died)"
            )
        return None
    if heartbeat_at is not None and now - heartbeat_at > STALE_AFTER:
        return (
            f"crashed: no heartbeat from its process (pid {pid} on {host}) since "
            f"{heartbeat_at:%Y-%m-%d %H:%M:%S} UTC"
        )
    return None


def mark(store: SQLMetadataStore, run_id: int, reason: str) -> bool:
    text = (
        f"Run {reason}. Steps recorded before the crash are kept; artifacts it was writing "
        "were never published. Re-run the pipeline; cached steps will be reused."
    )
    return store.mark_run_crashed(run_id, datetime.now(timezone.utc), text)


def reconcile(store: SQLMetadataStore, *, dry_run: bool = False) -> list[Crash]:
    """Mark every crashed run in ``store`` as failed; return those found."""
    found = []
    for run_id, name, host, pid, heartbeat in store.running_runs():
        record = store.get_run_by_id(run_id)
        reason = crash_reason(host, pid, heartbeat, record.start_time if record else None)
        if reason is None:
            continue
        if dry_run or mark(store, run_id, reason):
            found.append(Crash(run_id, name, reason))
    return found
