"""SIGTERM ends a run as Ctrl-C does: the run and the step in flight are recorded failed.

``kill``, ``docker stop``, systemd and batch schedulers stop a process with SIGTERM, whose
default action ends the interpreter without unwinding: the run would stay "running" until
crash detection noticed. While a run executes in the main thread, SIGTERM raises
:class:`Terminated` (a ``KeyboardInterrupt``, so orchestrators treat it as an interrupt);
a handler the program installed itself is left alone.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType


class Terminated(KeyboardInterrupt):
    """The process received SIGTERM while a run was executing."""


def _raise(signum: int, _frame: FrameType | None) -> None:
    raise Terminated(f"stopped by signal {signal.Signals(signum).name}")


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
    ):
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
