"""Per-step progress of a run: a live table on a terminal, plain lines anywhere else.

The default listener of ``Stack.run_pipeline``. ``RUNSTACK_PROGRESS`` chooses the form:
``auto`` (default: live on a terminal, plain lines otherwise), ``live``, ``plain``, ``log``
(through the ``runstack`` logger only, as :func:`log_listener` does) or ``off``.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TextIO

from runstack.execution._events import Listener, RunEvent, log_listener
from runstack.models import format_duration

ENV_PROGRESS = "RUNSTACK_PROGRESS"
_MODES = ("auto", "live", "plain", "log", "off")

# Status -> (word shown, rich style, plain-terminal symbol)
_LOOK = {
    "pending": ("pending", "dim", "·"),
    "running": ("running", "yellow", "…"),
    "done": ("done", "green", "✓"),
    "cached": ("cached", "cyan", "↺"),
    "failed": ("failed", "bold red", "✗"),
    "not run": ("not run", "dim", "-"),
}


@dataclass
class _Row:
    slot: str
    entrypoint: str | None = None
    status: str = "pending"
    started: float | None = None  # time.monotonic() at step_started
    duration: float | None = None
    detail: str | None = None

    def elapsed(self) -> float | None:
        if self.duration is not None:
            return self.duration
        if self.started is not None:
            return time.monotonic() - self.started
        return None


class ProgressListener:
    """Shows each step as pending, running, done, cached or failed, with its duration.

    ``steps`` lists the run's step slots in order, so the ones still to come show as pending.
    On a terminal (``live=None`` and ``stream.isatty()``) it draws a live rich table; otherwise
    it writes one plain line per event. Call :meth:`close` when the run is over (also on
    error); it is safe to call twice. Events may come from several threads.
    """

    def __init__(
        self,
        steps: Sequence[str] = (),
        *,
        stream: TextIO | None = None,
        live: bool | None = None,
    ) -> None:
        self._stream = stream if stream is not None else sys.stderr
        if live is None:
            isatty = getattr(self._stream, "isatty", None)
            live = bool(isatty and isatty()) and os.environ.get("TERM") != "dumb"
        self.live = live
        self._rows: dict[str, _Row] = {slot: _Row(slot) for slot in steps}
        self._lock = threading.RLock()
        self._run_started: float | None = None
        self._title = ""
        self._live: Any = None  # rich.live.Live while a run is shown
        self._console: Any = None

    # -- events --------------------------------------------------------------------------

    def __call__(self, event: RunEvent) -> None:
        with self._lock:
            if event.kind == "run_started":
                self._run_started = time.monotonic()
                self._title = f"pipeline {event.pipeline} · run {event.run}"
                self._start(event)
            elif event.kind in ("run_completed", "run_failed"):
                self._finish(event)
            elif event.step is not None:
                self._step(event)

    def _row(self, event: RunEvent) -> _Row:
        assert event.step is not None
        row = self._rows.get(event.step)
        if row is None:
            row = self._rows[event.step] = _Row(event.step)
        row.entrypoint = event.entrypoint or row.entrypoint
        return row

    def _step(self, event: RunEvent) -> None:
        row = self._row(event)
        if event.kind == "step_started":
            row.status, row.started, row.duration = "running", time.monotonic(), None
        elif event.kind == "step_retrying":
            row.status, row.detail = "running", event.detail
        else:
            row.status = {"step_completed": "done", "step_cached": "cached"}.get(
                event.kind, "failed"
            )
            row.duration = event.duration
            row.detail = event.detail
        if not self.live:
            self._line(_plain_step_line(row))
        elif self._live is not None:
            self._live.refresh()

    def _start(self, event: RunEvent) -> None:
        if not self.live:
            self._line(f"Running pipeline {event.pipeline} as run {event.run}")
            return
        from rich.console import Console
        from rich.live import Live

        self._console = Console(file=self._stream, stderr=self._stream is sys.stderr)
        self._live = Live(
            _Table(self), console=self._console, refresh_per_second=8, transient=False
        )
        self._live.start()

    def _finish(self, event: RunEvent) -> None:
        if event.kind == "run_failed":
            for row in self._rows.values():
                if row.status == "pending":
                    row.status = "not run"
        summary = self._summary(event)
        if self._live is not None:
            self._live.refresh()
            self._live.stop()
            self._live = None
            if not self._console.is_terminal:
                self._console.line()  # rich ends a non-terminal live render without one
            style = "green" if event.kind == "run_completed" else "bold red"
            self._console.print(summary, style=style, highlight=False, markup=False)
        else:
            self._line(summary)

    def _summary(self, event: RunEvent) -> str:
        total = time.monotonic() - self._run_started if self._run_started is not None else None
        counts: dict[str, int] = {}
        for row in self._rows.values():
            counts[row.status] = counts.get(row.status, 0) + 1
        parts = ", ".join(f"{n} {status}" for status, n in counts.items())
        outcome = "completed" if event.kind == "run_completed" else "failed"
        return f"Run {event.run} {outcome} in {format_duration(total)} ({parts})"

    def _line(self, text: str) -> None:
        self._stream.write(text + "\n")
        self._stream.flush()

    def close(self) -> None:
        """Stop the live display if a run ended without saying so (e.g. interrupted)."""
        with self._lock:
            if self._live is not None:
                self._live.stop()
                self._live = None


def _plain_step_line(row: _Row) -> str:
    word, _, symbol = _LOOK[row.status]
    text = f"  {symbol} {row.slot}: {word}"
    if row.status != "running":
        text += f" in {format_duration(row.duration)}"
    if row.status in ("failed", "cached") and row.detail:  # cached: "from run '...'"
        text += f": {_first_line(row.detail)}"
    return text


def _first_line(text: str, limit: int = 200) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


class _Table:
    """Rendered afresh on every refresh, so running steps show their time so far."""

    def __init__(self, owner: ProgressListener) -> None:
        self._owner = owner

    def __rich__(self) -> Any:
        from rich.console import Group
        from rich.spinner import Spinner
        from rich.table import Table
        from rich.text import Text

        table = Table(box=None, padding=(0, 1), show_edge=False)
        table.add_column("", width=2)
        table.add_column("step")
        table.add_column("status")
        table.add_column("time", justify="right")
        table.add_column("")
        # No lock here: rich's refresh thread calls this while an event may hold the listener's
        # lock and wait for rich's; copying the dict's values is atomic under the GIL.
        for row in list(self._owner._rows.values()):
            word, style, symbol = _LOOK[row.status]
            icon: Any = (
                Spinner("dots", style=style) if row.status == "running" else Text(symbol, style)
            )
            note = _first_line(row.detail or "", 80) if row.status in ("failed", "cached") else ""
            table.add_row(
                icon,
                row.slot,
                Text(word, style),
                format_duration(row.elapsed()),
                Text(note, "red" if row.status == "failed" else "dim"),
            )
        return Group(Text(self._owner._title, "bold"), table)


class _Quiet:
    def __call__(self, event: RunEvent) -> None:
        pass

    def close(self) -> None:
        pass


class _Logging:
    def __call__(self, event: RunEvent) -> None:
        log_listener(event)

    def close(self) -> None:
        pass


def default_listener(steps: Sequence[str] = ()) -> Listener:
    """The listener a run uses unless given one, chosen by ``$RUNSTACK_PROGRESS``.

    The result has a ``close()`` method; call it when the run is over.
    """
    mode = os.environ.get(ENV_PROGRESS, "auto").strip().lower() or "auto"
    if mode not in _MODES:
        from runstack.exceptions import ConfigError

        raise ConfigError(f"{ENV_PROGRESS}={mode!r} is not one of {', '.join(_MODES)}.")
    if mode == "off":
        return _Quiet()
    if mode == "log":
        return _Logging()
    return ProgressListener(steps, live={"auto": None, "live": True, "plain": False}[mode])
