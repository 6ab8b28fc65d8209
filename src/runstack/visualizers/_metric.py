"""A metric over runs: one number per run (a scalar output or a parameter), in run order."""

from __future__ import annotations

import math
from collections.abc import Sequence

from runstack.visualizers._svg import clip, esc, fmt_number, nice_ticks, svg, text

PLOT_W, PLOT_H = 520.0, 200.0
LEFT, TOP, BOTTOM, RIGHT = 64.0, 30.0, 70.0, 20.0


def metric_svg(points: Sequence[tuple[str, float | None]], title: str = "metric") -> str:
    """``points`` are ``(run name, value)`` oldest first; ``None`` marks a run without the
    value (drawn as a gap). Each point is a ``<circle class='point' data-run=...>``."""
    label = f"{title} over {len(points)} runs"
    values = [v for _, v in points if v is not None and math.isfinite(v)]
    width, height = LEFT + PLOT_W + RIGHT, TOP + PLOT_H + BOTTOM
    body = [text(LEFT, 18, clip(title, PLOT_W), font_weight="600", fill="#212121")]
    if not values:
        body.append(text(LEFT, TOP + 30, "No run has a value for this metric."))
        return svg(width, height, body, kind="metric", label=label)
    low, high = min(values), max(values)
    if high == low:
        low, high = low - (abs(low) or 1) * 0.5, high + (abs(high) or 1) * 0.5
    ticks = nice_ticks(low, high, 5)  # they enclose the values: the axis runs tick to tick
    low, high = ticks[0], ticks[-1]

    def y_of(v: float) -> float:
        return TOP + PLOT_H - (v - low) / (high - low) * PLOT_H

    n = len(points)
    step = PLOT_W / max(1, n - 1) if n > 1 else 0.0

    def x_of(i: int) -> float:
        return LEFT + (i * step if n > 1 else PLOT_W / 2)

    for t in ticks:
        y = y_of(t)
        body.append(
            f"<line x1='{LEFT}' y1='{y:.1f}' x2='{LEFT + PLOT_W}' y2='{y:.1f}' stroke='#eeeeee'/>"
        )
        body.append(
            text(LEFT - 6, y + 4, fmt_number(t), text_anchor="end", fill="#757575", font_size=11)
        )
    segments: list[list[str]] = []
    current: list[str] = []
    for i, (_, v) in enumerate(points):
        if v is None or not math.isfinite(v):
            if current:
                segments.append(current)
            current = []
        else:
            current.append(f"{x_of(i):.1f},{y_of(v):.1f}")
    if current:
        segments.append(current)
    for seg in segments:
        body.append(
            f"<polyline points='{' '.join(seg)}' fill='none' stroke='#1565c0' stroke-width='2'/>"
        )
    every = max(1, math.ceil(n / 12))  # at most ~12 run names under the axis
    for i, (run, v) in enumerate(points):
        x = x_of(i)
        if v is not None and math.isfinite(v):
            body.append(
                f"<circle class='point' data-run='{esc(run)}' data-value='{esc(repr(v))}' "
                f"cx='{x:.1f}' cy='{y_of(v):.1f}' r='3.5' fill='#1565c0'>"
                f"<title>{esc(run)}: {esc(fmt_number(v))}</title></circle>"
            )
        if i % every == 0 or i == n - 1:
            y = TOP + PLOT_H + 14
            body.append(
                f"<text x='{x:.1f}' y='{y:.1f}' text-anchor='end' fill='#757575' "
                f"font-size='10' transform='rotate(-30 {x:.1f} {y:.1f})'>"
                f"{esc(clip(run, 90))}</text>"
            )
    body.append(
        f"<line x1='{LEFT}' y1='{TOP + PLOT_H}' x2='{LEFT + PLOT_W}' "
        f"y2='{TOP + PLOT_H}' stroke='#9e9e9e'/>"
    )
    return svg(width, height, body, kind="metric", label=label)
