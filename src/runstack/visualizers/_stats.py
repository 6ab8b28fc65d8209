"""Statistics pictures of a table: per column a histogram (numbers) or its most frequent
values (text, booleans, categories), with the null count and summary numbers.

Draws what ``StatisticsMaterializer`` computes (:class:`TableStatistics`); each column is a
``<g class='column' data-column=... data-kind='histogram|top-values|summary'>``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from runstack.visualizers._svg import clip, esc, fmt_number, svg, text

if TYPE_CHECKING:
    from runstack.materializers._tabular import ColumnStatistics, TableStatistics

PANEL_W, PANEL_H = 250.0, 170.0
GAP = 14.0
PER_ROW = 3
CHART_TOP, CHART_H = 58.0, 92.0
BAR = "#5c6bc0"


def _summary(c: ColumnStatistics) -> list[str]:
    total = c.count + c.nulls
    nulls = f"nulls {c.nulls:,}" + (f" ({c.nulls / total:.0%})" if total and c.nulls else "")
    first = f"{c.count:,} values · {nulls}"
    if c.mean is not None:
        second = f"mean {fmt_number(c.mean)} · std {fmt_number(c.std)}"
        third = (
            f"min {fmt_number(c.min)} · median {fmt_number(c.quantiles.get(0.5))} · "
            f"max {fmt_number(c.max)}"
        )
        return [first, second, third]
    if c.min is not None:
        return [first, f"from {c.min}", f"to {c.max}"]
    return [first]


def _histogram(c: ColumnStatistics, x: float, y: float) -> list[str]:
    bins = c.histogram
    top = max(n for _, _, n in bins) or 1
    width = (PANEL_W - 20) / len(bins)
    out = []
    for i, (low, high, n) in enumerate(bins):
        h = CHART_H * n / top
        out.append(
            f"<rect class='hist-bar' x='{x + 10 + i * width:.1f}' y='{y + CHART_H - h:.1f}' "
            f"width='{max(1.0, width - 1):.1f}' height='{h:.1f}' fill='{BAR}'>"
            f"<title>{esc(fmt_number(low))} to {esc(fmt_number(high))}: {n:,}</title></rect>"
        )
    out.append(text(x + 10, y + CHART_H + 12, fmt_number(bins[0][0]), fill="#757575", font_size=10))
    out.append(
        text(
            x + PANEL_W - 10,
            y + CHART_H + 12,
            fmt_number(bins[-1][1]),
            text_anchor="end",
            fill="#757575",
            font_size=10,
        )
    )
    return out


def _top_values(c: ColumnStatistics, x: float, y: float) -> list[str]:
    items = list(c.top_values.items())
    top = max(n for _, n in items) or 1
    row = CHART_H / max(len(items), 5)
    label_w = 80.0
    out = []
    for i, (value, n) in enumerate(items):
        ry = y + i * row
        w = (PANEL_W - label_w - 60) * n / top
        out.append(
            text(x + 10, ry + row * 0.7, clip(value, label_w - 6), fill="#424242", font_size=11)
        )
        out.append(
            f"<rect class='top-bar' x='{x + label_w:.1f}' y='{ry + 2:.1f}' width='{w:.1f}' "
            f"height='{row - 4:.1f}' fill='{BAR}'><title>{esc(value)}: {n:,}</title></rect>"
        )
        out.append(
            text(x + label_w + w + 4, ry + row * 0.7, f"{n:,}", fill="#616161", font_size=10)
        )
    return out


def _panel(c: ColumnStatistics, x: float, y: float) -> str:
    kind = "histogram" if c.histogram else "top-values" if c.top_values else "summary"
    body = [
        f"<rect x='{x:.1f}' y='{y:.1f}' width='{PANEL_W}' height='{PANEL_H}' rx='6' "
        "fill='#fafafa' stroke='#e0e0e0'/>",
        text(x + 10, y + 18, clip(c.name, PANEL_W - 90), font_weight="600", fill="#212121"),
        text(
            x + PANEL_W - 10,
            y + 18,
            clip(c.type, 80),
            text_anchor="end",
            fill="#757575",
            font_size=11,
        ),
    ]
    for i, line in enumerate(_summary(c)):
        body.append(
            text(
                x + 10, y + 33 + i * 12, clip(line, PANEL_W - 20, 5.6), fill="#616161", font_size=10
            )
        )
    chart_y = y + CHART_TOP + 6
    if kind == "histogram":
        body += _histogram(c, x, chart_y)
    elif kind == "top-values":
        body += _top_values(c, x, chart_y)
    return (
        f"<g class='column' data-column='{esc(c.name)}' data-kind='{kind}'>"
        f"<title>{esc(str(c))}</title>" + "".join(body) + "</g>"
    )


def statistics_svg(stats: TableStatistics | Any, title: str | None = None) -> str:
    """One panel per column of ``stats`` (a :class:`TableStatistics`), three to a row."""
    columns = list(stats.columns.values())
    label = title or f"Statistics of {stats.num_rows:,} rows, {len(columns)} columns"
    rows = max(1, -(-len(columns) // PER_ROW))
    per_row = min(PER_ROW, max(1, len(columns)))
    width = GAP + per_row * (PANEL_W + GAP)
    height = 28 + rows * (PANEL_H + GAP)
    body = [text(GAP, 18, label, font_weight="600", fill="#212121")]
    for i, c in enumerate(columns):
        body.append(
            _panel(c, GAP + (i % PER_ROW) * (PANEL_W + GAP), 28 + (i // PER_ROW) * (PANEL_H + GAP))
        )
    return svg(width, height, body, kind="statistics", label=label)
