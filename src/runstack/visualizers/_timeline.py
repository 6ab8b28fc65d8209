"""The timeline: one bar per step on a shared time axis, so parallel steps show side by side
and long steps stand out. Bars are ``<rect class='bar' data-step=...>``."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import TYPE_CHECKING

from runstack.models import format_duration
from runstack.visualizers._model import RunModel, StepNode, run_model
from runstack.visualizers._svg import clip, colour_of, esc, nice_ticks, svg, text

if TYPE_CHECKING:
    from runstack.post_execution import RunView

ROW_H = 24.0
LABEL_W = 170.0
PLOT_W = 560.0
MARGIN = 12.0
AXIS_H = 26.0
RIGHT = 140.0  # room after the last bar for its label


def _now_like(t: datetime) -> datetime:
    return datetime.now(timezone.utc if t.tzinfo is not None else None)


def _span(node: StepNode, fallback_end: datetime | None) -> tuple[datetime, datetime] | None:
    if node.start_time is None:
        return None
    end = node.end_time
    if end is None:  # still running (or died): up to the run's end, else until now
        end = fallback_end or _now_like(node.start_time)
    return node.start_time, max(end, node.start_time)


def timeline_svg(run: RunView | RunModel) -> str:
    """Steps as bars along the run's time axis (seconds from the first step's start)."""
    model = run_model(run)
    label = f"Timeline of {model.name} ({model.pipeline})"
    spans = {n.name: _span(n, model.end_time) for n in model.steps}
    timed = [(n, s) for n, s in ((n, spans[n.name]) for n in model.steps) if s is not None]
    if not timed:
        return svg(
            320,
            40,
            [text(MARGIN, 24, "No step of this run has started.")],
            kind="timeline",
            label=label,
        )
    timed.sort(key=lambda ns: (ns[1][0], ns[0].name))
    t0 = min(s[0] for _, s in timed)
    total = max((s[1] - t0).total_seconds() for _, s in timed) or 1e-3
    scale = PLOT_W / total
    x0 = MARGIN + LABEL_W
    height = MARGIN + AXIS_H + ROW_H * len(timed) + MARGIN
    body = []
    ticks = [t for t in nice_ticks(0.0, total, 6) if t <= total * 1.0001]
    for t in ticks:  # grid and tick labels
        x = x0 + t * scale
        body.append(
            f"<line x1='{x:.1f}' y1='{MARGIN + AXIS_H - 6:.1f}' x2='{x:.1f}' "
            f"y2='{height - MARGIN:.1f}' stroke='#e0e0e0'/>"
        )
        body.append(
            text(
                x,
                MARGIN + 12,
                format_duration(t) or "0s",
                text_anchor="middle",
                fill="#757575",
                font_size=11,
            )
        )
    for i, (node, (start, end)) in enumerate(timed):
        y = MARGIN + AXIS_H + i * ROW_H
        bx = x0 + (start - t0).total_seconds() * scale
        bw = max(2.0, (end - start).total_seconds() * scale)
        colour = colour_of(node.status)
        took = format_duration(node.duration) if node.end_time is not None else "still running"
        offset = format_duration((start - t0).total_seconds())
        tip = f"{node.name}: {node.status}, {took}, from +{offset}"
        body.append(text(MARGIN, y + 16, clip(node.name, LABEL_W - 8), fill="#212121"))
        body.append(
            f"<rect class='bar' data-step='{esc(node.name)}' data-status='{esc(node.status)}' "
            f"x='{bx:.1f}' y='{y + 4:.1f}' width='{bw:.1f}' height='{ROW_H - 8:.0f}' rx='3' "
            f"fill='{colour}'><title>{esc(tip)}</title></rect>"
        )
        room = x0 + PLOT_W + RIGHT - 8 - (bx + bw + 4)
        body.append(
            text(
                bx + bw + 4,
                y + 16,
                clip(f"{node.status} {took}", room),
                fill="#616161",
                font_size=11,
            )
        )
    return svg(x0 + PLOT_W + RIGHT, height, body, kind="timeline", label=label)
