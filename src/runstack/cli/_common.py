"""What every command shares: the repository, errors without tracebacks, tables and JSON.

Only click is imported at module level, so ``runstack --help`` stays fast; rich and the
repository (SQLAlchemy, pydantic) are imported inside the commands that use them. Tables and
fields are drawn by rich on a terminal only: piped or redirected, they are plain aligned text
(easy to ``grep``/``cut``, and rich's ~50-100 ms import is not paid by scripts).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from rich.console import Console

    from runstack.repository import Repository

F = TypeVar("F", bound=Callable[..., Any])


class UserError(click.ClickException):
    """A mistake the user can fix: printed as ``Error: ...`` with exit status 1."""


@dataclass
class CliState:
    """Set by the main group; ``-R/--repository`` overrides where the repository is found."""

    repository_path: str | None = None
    _repo: Repository | None = None

    def repo(self) -> Repository:
        if self._repo is None:
            from runstack.repository import Repository

            self._repo = Repository(self.repository_path)
        return self._repo


def get_repo() -> Repository:
    """The repository of the running command (found as ``Repository()`` finds it)."""
    ctx = click.get_current_context()
    state = ctx.find_object(CliState)
    if state is None:  # a command invoked on its own, e.g. in a test
        state = ctx.ensure_object(CliState)
    return state.repo()


def json_option(func: F) -> F:
    """``--json``: print machine-readable JSON on stdout instead of a table."""
    return click.option(
        "--json", "as_json", is_flag=True, help="Print JSON for scripts instead of a table."
    )(func)


def stack_option(func: F) -> F:
    return click.option(
        "--stack",
        "-s",
        "stack_key",
        metavar="STACK",
        help="Read from this stack only (default: every stack, the active one first).",
    )(func)


def echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=_json_default))


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if hasattr(value, "value"):  # enums such as ExecutionStatus
        return value.value
    return str(value)


def console() -> Console:
    """A rich console on stdout; wide when not a terminal, so names are never cut."""
    from rich.console import Console

    out = Console(soft_wrap=False, highlight=False)
    if not out.is_terminal:
        out = Console(soft_wrap=False, highlight=False, width=max(out.width, 160))
    return out


def print_table(
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    title: str | None = None,
    empty: str = "Nothing to show.",
    styles: dict[str, str] | None = None,
) -> None:
    """A rich table on a terminal, else plain columns; ``styles`` maps a column to a style,
    e.g. ``{"status": "status"}`` (terminal only)."""
    if not rows:
        click.echo(empty)
        return
    if not _on_terminal():
        _plain_table(columns, rows, title)
        return
    from rich.table import Table
    from rich.text import Text

    out = console()
    styles = styles or {}
    table = Table(title=title, title_justify="left", header_style="bold")
    for col in columns:
        table.add_column(col, overflow="fold")
    for row in rows:
        cells = []
        for col, value in zip(columns, row, strict=True):
            text = "" if value is None else str(value)
            style = status_style(text) if styles.get(col) == "status" else styles.get(col, "")
            cells.append(Text(text, style=style))
        table.add_row(*cells)
    out.print(table)


def print_fields(fields: Sequence[tuple[str, Any]], *, title: str | None = None) -> None:
    """``name: value`` pairs, aligned, skipping empty values."""
    shown = [(name, str(value)) for name, value in fields if value is not None and value != ""]
    if not _on_terminal():
        width = max((len(name) for name, _ in shown), default=0)
        if title:
            click.echo(title)
        for name, text in shown:
            click.echo(f"{name:<{width}}  {text}".rstrip())
        return
    from rich.table import Table
    from rich.text import Text

    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column(overflow="fold")
    for name, text in shown:
        style = status_style(text) if name == "status" else ""
        grid.add_row(name, Text(text, style=style))
    out = console()
    if title:
        out.print(Text(title, style="bold underline"))
    out.print(grid)


def _on_terminal() -> bool:
    """Whether stdout is a terminal (or rich is told to act as one, ``FORCE_COLOR``)."""
    return sys.stdout.isatty() or bool(os.environ.get("FORCE_COLOR"))


def _plain_table(columns: Sequence[str], rows: Sequence[Sequence[Any]], title: str | None) -> None:
    """Columns aligned with two spaces between them, a header line, no borders."""
    cells = [[("" if v is None else str(v)).replace("\n", ", ") for v in row] for row in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    if title:
        click.echo(title)
    for line in [list(columns), *cells]:
        click.echo("  ".join(f"{v:<{w}}" for v, w in zip(line, widths, strict=True)).rstrip())


def status_style(status: str) -> str:
    return {
        "completed": "green",
        "done": "green",
        "cached": "cyan",
        "running": "yellow",
        "failed": "bold red",
    }.get(status, "")


def fmt_time(value: datetime | None) -> str:
    """Local time to the second; empty when unknown."""
    if value is None:
        return ""
    return value.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def fmt_duration(seconds: float | None) -> str:
    from runstack.models import format_duration

    return format_duration(seconds)


def duration_of(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return (end - start).total_seconds()


def warn(message: str) -> None:
    click.secho(message, fg="yellow", err=True)


def parse_settings(pairs: Sequence[str]) -> dict[str, str]:
    """``key=value`` arguments -> a dict; values stay strings (the flavor converts them)."""
    settings: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise UserError(
                f"Settings are given as key=value, got {pair!r}; e.g. `path=/data/metadata.db`."
            )
        if key in settings:
            raise UserError(f"Setting {key!r} is given twice.")
        settings[key] = value
    return settings
