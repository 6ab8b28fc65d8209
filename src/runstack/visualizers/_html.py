"""HTML building blocks shared by the notebook displays and the report: tables, badges, style.

Cell values are text and are escaped; only :class:`Html` (markup this package built) passes
through as it is.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from runstack.visualizers._svg import colour_of, esc

STYLE = """
.runstack-view{font-family:system-ui,-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;
  font-size:13px;color:#212121;line-height:1.4}
.runstack-view h2{font-size:18px;margin:10px 0 6px}
.runstack-view h3{font-size:15px;margin:14px 0 6px}
.runstack-view h4{font-size:13px;margin:10px 0 4px}
.runstack-view table{border-collapse:collapse;margin:4px 0 10px}
.runstack-view th,.runstack-view td{border-bottom:1px solid #e0e0e0;padding:3px 10px 3px 0;
  text-align:left;vertical-align:top}
.runstack-view th{color:#616161;font-weight:600}
.runstack-view code,.runstack-view pre{font-family:ui-monospace,Menlo,Consolas,monospace;
  font-size:12px}
.runstack-view pre{background:#f5f5f5;padding:6px 8px;overflow:auto;max-height:320px;
  white-space:pre-wrap}
.runstack-view .badge{display:inline-block;padding:0 7px;border-radius:9px;color:#fff;
  font-size:11px;font-weight:600}
.runstack-view .muted{color:#757575}
.runstack-view .picture{overflow-x:auto;max-width:100%}
.runstack-view .before{color:#c62828}.runstack-view .after{color:#2e7d32}
"""


class Html(str):
    """Markup built by this package; everything else put into a page is escaped."""

    __slots__ = ()


def cell(value: Any) -> str:
    if isinstance(value, Html):
        return value
    if value is None:
        return ""
    if isinstance(value, datetime):
        return esc(value.strftime("%Y-%m-%d %H:%M:%S"))
    if isinstance(value, dict | list | tuple):
        return esc(short(value))
    return esc(value)


def short(value: Any, limit: int = 120) -> str:
    """A one-line form of a value, cut at ``limit`` characters."""
    if isinstance(value, str):
        text = value
    else:
        try:
            text = json.dumps(value, sort_keys=True, default=str)
        except (TypeError, ValueError):
            text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], cls: str = "") -> Html:
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in row) + "</tr>" for row in rows)
    klass = f" class='{esc(cls)}'" if cls else ""
    return Html(f"<table{klass}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")


def fields(pairs: Iterable[tuple[str, Any]]) -> Html:
    """A two-column table of labelled values."""
    rows = "".join(f"<tr><th>{esc(k)}</th><td>{cell(v)}</td></tr>" for k, v in pairs)
    return Html(f"<table><tbody>{rows}</tbody></table>")


def badge(status: str) -> Html:
    return Html(f"<span class='badge' style='background:{colour_of(status)}'>{esc(status)}</span>")


def pre(text: str) -> Html:
    return Html(f"<pre>{esc(text)}</pre>")


def picture(svg_markup: str) -> Html:
    return Html(f"<div class='picture'>{svg_markup}</div>")


def view(inner: str) -> Html:
    """A display block with its own style (notebooks show each output on its own)."""
    return Html(f"<div class='runstack-view'><style>{STYLE}</style>{inner}</div>")
