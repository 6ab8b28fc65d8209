"""Captures a step's stdout, stderr and ``logging`` output while still echoing it.

While the user's function runs, ``sys.stdout`` and ``sys.stderr`` are replaced by tees that
write through to the real streams and into the step's in-memory buffer, and a handler on the
root logger copies log records into the same buffer. The text is written to the artifact store
only if there is any.

Limits: output written straight to file descriptors 1 and 2 (C extensions, subprocesses) is
echoed but not captured. Steps running at once in threads of one process each get their own
log: the streams are swapped once while any step runs, and each write goes to the buffer of
the step running in the writing thread (a context variable); output from threads a step
starts itself is not attributed to it.
"""

from __future__ import annotations

import contextlib
import contextvars
import io
import logging
import sys
import threading
from collections.abc import Iterator
from typing import Any, TextIO

LOGS_FILE = "logs.txt"
MAX_CHARS = 8 * 1024 * 1024  # beyond this a step's captured log is cut (the console gets all)


class _Buffer:
    def __init__(self) -> None:
        self._parts = io.StringIO()
        self._size = 0
        self.truncated = False

    def write(self, text: str) -> None:
        if self._size >= MAX_CHARS:
            self.truncated = True
            return
        self._parts.write(text)
        self._size += len(text)

    def getvalue(self) -> str:
        text = self._parts.getvalue()
        if self.truncated:
            text += f"\n[runstack: log cut at {MAX_CHARS} characters]\n"
        return text


class _Tee(io.TextIOBase):
    """Writes to the real stream, and to the buffer of the step running in this context."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        buffer = _current.get()
        if buffer is not None:
            buffer.write(text)
        return self._stream.write(text)

    def flush(self) -> None:
        self._stream.flush()

    def isatty(self) -> bool:
        return self._stream.isatty()

    def fileno(self) -> int:
        return self._stream.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self._stream, "encoding", "utf-8")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


class _Handler(logging.Handler):
    def __init__(self, echo: TextIO | None) -> None:
        super().__init__()
        self._echo = echo
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))

    def _echoing(self, record: logging.LogRecord) -> bool:
        """Whether logging's last-resort handler would have printed ``record``: no other
        handler on the root logger (a step may configure logging while capture is on)."""
        return (
            self._echo is not None
            and record.levelno >= logging.WARNING
            and logging.getLogger().handlers == [self]
        )

    def emit(self, record: logging.LogRecord) -> None:
        buffer = _current.get()
        if buffer is None:  # logged outside any step (between steps, another thread)
            if self._echoing(record):
                self._echo.write(self.format(record) + "\n")  # type: ignore[union-attr]
            return
        try:
            text = self.format(record) + "\n"
        except Exception:  # a bad format string must not fail the step
            self.handleError(record)
            return
        buffer.write(text)
        if self._echoing(record):
            self._echo.write(text)  # type: ignore[union-attr]


class StepLogs:
    """The text one step wrote; ``text`` is empty when it wrote nothing."""

    def __init__(self) -> None:
        self.buffer = _Buffer()

    @property
    def text(self) -> str:
        return self.buffer.getvalue()


# The step running in this thread (or task) writes here; None outside steps.
_current: contextvars.ContextVar[_Buffer | None] = contextvars.ContextVar(
    "runstack_step_logs", default=None
)
_lock = threading.Lock()
_active = 0  # captures in progress in this process
_handler: _Handler | None = None  # on the root logger while routed


def _install() -> None:
    """Route the streams and the root logger through the per-step buffers (first capture)."""
    global _active, _handler
    with _lock:
        _active += 1
        if _active > 1:
            # Still routed, unless the streams were replaced meanwhile (a test's capture, a
            # notebook) while a step ran on (a timed-out thread): route the new ones too.
            if sys.stdout is not None and not isinstance(sys.stdout, _Tee):
                sys.stdout = _tee(sys.stdout)
            if sys.stderr is not None and not isinstance(sys.stderr, _Tee):
                sys.stderr = _tee(sys.stderr)
            return
        out, err = sys.stdout, sys.stderr
        root = logging.getLogger()
        # With no handler configured anywhere, logging would print warnings to stderr through
        # its last-resort handler; ours would hide that, so it echoes them itself.
        echo = err if not root.handlers and logging.lastResort is not None else None
        handler = _Handler(echo)
        root.addHandler(handler)
        if out is not None:  # None under pythonw and some embedders
            sys.stdout = _tee(out)
        if err is not None:
            sys.stderr = _tee(err)
        _handler = handler


_tees: dict[int, _Tee] = {}  # by id of the stream: a tee dropped flushes its stream (~50 us)


def _tee(stream: TextIO) -> _Tee:
    tee = _tees.get(id(stream))
    if tee is None or tee._stream is not stream:
        if len(_tees) > 8:  # streams replaced many times (tests capturing output): forget them
            _tees.clear()
        tee = _tees[id(stream)] = _Tee(stream)
    return tee


def _uninstall() -> None:
    global _active, _handler
    with _lock:
        _active -= 1
        if _active or _handler is None:
            return
        handler, _handler = _handler, None
        # Back to the streams the tees wrap (the ones routed last, if replaced meanwhile).
        if isinstance(sys.stdout, _Tee):
            sys.stdout = sys.stdout._stream
        if isinstance(sys.stderr, _Tee):
            sys.stderr = sys.stderr._stream
        logging.getLogger().removeHandler(handler)


@contextlib.contextmanager
def redirected() -> Iterator[None]:
    """Keep the streams and the root logger routed through the per-step buffers for a while
    (a whole run in this process), so that each step's :func:`capture` only picks its buffer:
    swapping them and adding a handler per step was ~0.1 ms of every step."""
    _install()
    try:
        yield
    finally:
        _uninstall()


@contextlib.contextmanager
def capture() -> Iterator[StepLogs]:
    """Capture what the step running in this thread prints or logs; concurrent steps in
    other threads each capture their own (the buffer is chosen by a context variable)."""
    logs = StepLogs()
    _install()
    token = _current.set(logs.buffer)
    try:
        yield logs
    finally:
        _current.reset(token)
        _uninstall()
