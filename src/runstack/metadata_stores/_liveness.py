"""Whether a run recorded as running still has a live owner (kill -9, power loss, OOM killer).

A run records the host, pid and *namespace* (``<boot id>:<pid namespace inode>``) of the
process that started it, and that process refreshes the run's heartbeat while it works
(``execution._heartbeat``). A run still marked running is *crashed* when

* its owner is provably dead: same host and same namespace as the one asking, and its pid is
  gone, a zombie, or a newer process that reuses the pid (started after the run); or
* its owner cannot be looked up (another host, another container's PID namespace, another
  boot, or a run recorded before namespaces were) and its heartbeat is older than
  :data:`STALE_AFTER`.

Reading never writes: views show a crashed run as failed, with the reason, ending when it was
last seen alive (:func:`as_seen`). Only ``launch`` and ``runstack run reconcile`` record it
(:func:`reconcile`), so read-only credentials can browse.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

from runstack.metadata_stores._filter import RunFilter
from runstack.models import ExecutionStatus, RunRecord

if TYPE_CHECKING:
    from runstack.metadata_stores._sql_store import SQLMetadataStore

STALE_AFTER = timedelta(minutes=5)  # ten missed heartbeats (they come every 30 s)


@functools.lru_cache(maxsize=1)
def this_host() -> str:
    return socket.gethostname()


@functools.lru_cache(maxsize=1)
def this_namespace() -> str | None:
    """``<boot id>:<pid namespace inode>`` of this process: pids compare only within one.

    None where Linux's /proc is not there (macOS has neither containers' PID namespaces nor a
    boot id; the host name alone then decides).
    """
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            boot = f.read().strip()
        ns = os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return None
    return f"{boot}:{ns}"


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
    """Whether process ``pid`` of this host and namespace has ended (or the pid is reused)."""
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


def owner_checkable(run: RunRecord) -> bool:
    """Whether the run's pid names a process this one can look up."""
    return (
        run.owner_pid is not None
        and run.owner_host == this_host()
        and run.owner_ns == this_namespace()
    )


@dataclass(frozen=True)
class Crash:
    run_id: int
    run_name: str
    reason: str
    last_seen: datetime  # the run's end: when its owner was last known alive


def crash_of(run: RunRecord, now: datetime | None = None) -> Crash | None:
    """Why a run marked running is in fact dead, or None if it may still be running."""
    if run.status is not ExecutionStatus.RUNNING:
        return None
    last_seen = run.heartbeat_at or run.start_time
    where = f"pid {run.owner_pid} on {run.owner_host}"
    if owner_checkable(run):
        if not process_gone(run.owner_pid or 0, run.start_time):
            return None
        reason = (
            f"crashed: its process ({where}) ended without finishing the run (killed, or the "
            "interpreter died)"
        )
        return Crash(run.id, run.name, reason, last_seen)
    now = now or datetime.now(timezone.utc)
    if now - last_seen <= STALE_AFTER:
        return None  # cannot be proven dead, and it beat recently: running
    reason = (
        f"crashed: no heartbeat from its process ({where}) since {last_seen:%Y-%m-%d %H:%M:%S} UTC"
    )
    return Crash(run.id, run.name, reason, last_seen)


def error_text(reason: str) -> str:
    return (
        f"Run {reason}. Steps recorded before the crash are kept; artifacts it was writing "
        "were never published. Re-run the pipeline; cached steps will be reused."
    )


def as_seen(run: RunRecord, now: datetime | None = None) -> RunRecord:
    """The record as a reader should see it: a crashed run reads as failed (nothing written)."""
    crash = crash_of(run, now)
    if crash is None:
        return run
    return dataclasses.replace(
        run,
        status=ExecutionStatus.FAILED,
        end_time=crash.last_seen,
        error=error_text(crash.reason),
    )


def reconcile(store: SQLMetadataStore, *, dry_run: bool = False) -> list[Crash]:
    """Record every crashed run in ``store`` as failed (ended when last seen); return them."""
    found = []
    for run in store.list_runs(where=RunFilter(status=ExecutionStatus.RUNNING)):
        crash = crash_of(run)
        if crash is None:
            continue
        if dry_run or store.mark_run_crashed(
            run.id, crash.last_seen, error_text(crash.reason), seen_heartbeat=run.heartbeat_at
        ):
            found.append(crash)
    return found
