"""Captures a step's stdout, stderr and ``logging`` output while still echoing it.

While the user's function runs, ``sys.stdout`` and ``sys.stderr`` are replaced by tees that
write through to the real streams and into one in-memory buffer, and a handler on the root
logger copies log records into the same buffer. That costs two attribute swaps and a handler
registration per step; the text is written to the artifact store only if there is any.

Limits: output written straight to file descriptors 1 and 2 (C extensions, subprocesses) is
echoed but not captured, and steps running in threads of one process share one capture.
"""

from __future__ import annotations

import contextlib
import io
import logging
import sys
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
    """Writes to the real stream and to the step's buffer."""

    def __init__(self, stream: TextIO, buffer: _Buffer) -> None:
        self._stream = stream
        self._buffer = buffer

    def write(self, text: str) -> int:
        self._buffer.write(text)
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
    def __init__(self, buffer: _Buffer, echo: TextIO | None) -> None:
        super().__init__()
        self._buffer = buffer
        self._echo = echo
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record) + "\n"
        except Exception:  # a bad format string must not fail the step
            self.handleError(record)
            return
        self._buffer.write(text)
        if self._echo is not None and record.levelno >= logging.WARNING:
            self._echo.write(text)  # what logging's last-resort handler would have printed


class StepLogs:
    """The text one step wrote; ``text`` is empty when it wrote nothing."""

    def __init__(self) -> None:
        self.buffer = _Buffer()

    @property
    def text(self) -> str:
        return self.buffer.getvalue()


_spare: _Handler | None = None


@contextlib.contextmanager
def capture() -> Iterator[StepLogs]:
    logs = StepLogs()
    out, err = sys.stdout, sys.stderr
    root = logging.getLogger()
    # With no handler configured anywhere, logging would print warnings to stderr through its
    # last-resort handler; ours would hide that, so it echoes them itself.
    echo = err if not root.handlers and logging.lastResort is not None else None
    global _spare
    handler, _spare = _spare or _Handler(logs.buffer, echo), None  # reuse: Handler() takes locks
    handler._buffer, handler._echo = logs.buffer, echo
    root.addHandler(handler)
    if out is not None:  # None under pythonw and some embedders
        sys.stdout = _Tee(out, logs.buffer)
    if err is not None:
        sys.stderr = _Tee(err, logs.buffer)
    try:
        yield logs
    finally:
        sys.stdout, sys.stderr = out, err
        root.removeHandler(handler)
        _spare = handler
