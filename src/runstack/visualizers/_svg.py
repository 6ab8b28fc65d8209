"""Small helpers every picture shares: escaping, status colours, number and time formats.

Names come from users (step, output, column and run names, values); they are always text in
the SVG and HTML we write, never markup, so every one goes through :func:`esc`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable

# Characters XML 1.0 forbids even when escaped (controls other than tab, newline, return).
_INVALID_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")

#: Fill colour per step status; "not run" is a step the run never reached.
STATUS_COLOURS = {
    "completed": "#2e7d32",
    "cached": "#0277bd",
    "failed": "#c62828",
    "running": "#ef8f00",
    "not run": "#9e9e9e",
}
FONT = "font-family='system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif'"
CHAR_W = 7.0  # average width of a 12px sans-serif character, for sizing boxes to names


def esc(text: object) -> str:
    """``text`` safe as XML/HTML text or attribute value: escaped, forbidden characters gone."""
    s = _INVALID_XML.sub("\ufffd", str(text))
    return (
        s.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&quot;")
        .replace("'", "&#x27;")
    )


def clip(text: str, width_px: float, char_w: float = CHAR_W) -> str:
    """``text`` shortened with an ellipsis to fit ``width_px`` (the full text goes in a title)."""
    room = max(1, int(width_px / char_w))
    return text if len(text) <= room else text[: max(0, room - 1)] + "…"


def colour_of(status: str) -> str:
    return STATUS_COLOURS.get(status, STATUS_COLOURS["not run"])


def fmt_number(value: object) -> str:
    """A short form of a number for labels (``0.123``, ``38,630``, ``1.2e-05``); other values
    as text."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}" if abs(value) < 10**15 else f"{value:.3g}"
    if math.isnan(value) or math.isinf(value):
        return str(value)
    if 1e4 <= abs(value) < 1e15:
        return f"{value:,.0f}"
    return f"{value:.4g}"


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values (1, 2 or 5 times a power of ten apart) from at or below ``low`` to at
    or above ``high``."""
    if not (math.isfinite(low) and math.isfinite(high)) or high <= low:
        return [low] if math.isfinite(low) else []
    raw = (high - low) / max(1, count)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first, last = math.floor(low / step + 1e-9), math.ceil(high / step - 1e-9)
    return [round(i * step, 12) for i in range(first, last + 1)]


def svg(width: float, height: float, body: Iterable[str], *, kind: str, label: str) -> str:
    """A standalone ``<svg>`` element (usable inline in HTML or as a file)."""
    return (
        f"<svg xmlns='http://www.w3.org/2000/svg' class='runstack-{kind}' "
        f"width='{width:.0f}' height='{height:.0f}' viewBox='0 0 {width:.0f} {height:.0f}' "
        f"role='img' aria-label='{esc(label)}' {FONT} font-size='12'>"
        f"<title>{esc(label)}</title>" + "".join(body) + "</svg>"
    )


def text(x: float, y: float, content: str, **attrs: object) -> str:
    """A ``<text>`` element; attribute names use ``_`` for ``-`` (``text_anchor``)."""
    extra = "".join(f" {k.rstrip('_').replace('_', '-')}='{esc(v)}'" for k, v in attrs.items())
    return f"<text x='{x:.1f}' y='{y:.1f}'{extra}>{esc(content)}</text>"
