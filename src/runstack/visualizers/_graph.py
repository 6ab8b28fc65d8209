"""The run graph: a run's steps as boxes, left to right along its data dependencies.

Layout is grandalf's Sugiyama layering (layers, crossing reduction, coordinates, routing of
long edges through dummy points); this module only sizes the boxes and writes the SVG. Each
step is a ``<g class='step' data-step=... data-status=...>``, each dependency a
``<g class='edge' data-source=... data-target=...>``, so tests and scripts can read the picture.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any

from runstack.models import format_duration
from runstack.visualizers._model import RunModel, StepNode, run_model
from runstack.visualizers._svg import CHAR_W, clip, colour_of, esc, svg, text

if TYPE_CHECKING:
    from runstack.post_execution import RunView

NODE_H = 58.0
MIN_W, MAX_W = 150.0, 260.0
LAYER_GAP = 70.0  # horizontal room between layers, for the edges
ROW_GAP = 22.0
MARGIN = 16.0


def _missing_viz(e: ImportError) -> ImportError:
    return ImportError(
        f"Drawing run graphs needs an optional dependency ({e.name}): pip install 'runstack[viz]'"
    )


def _width(node: StepNode) -> float:
    longest = max(len(node.name) + 2, len(_outputs_line(node)), 18)
    return min(MAX_W, max(MIN_W, longest * CHAR_W + 20))


def _outputs_line(node: StepNode) -> str:
    return "→ " + ", ".join(node.outputs) if node.outputs else "no outputs"


class _Box:
    """grandalf's vertex view: it reads ``w``/``h`` and writes ``xy`` (top-down layout, so the
    box's height along the layer is given as ``w``)."""

    def __init__(self, along: float, across: float) -> None:
        self.w = along
        self.h = across
        self.xy = (0.0, 0.0)


class _Path:
    def __init__(self) -> None:
        self.points: list[tuple[float, float]] = []

    def setpath(self, points: list[tuple[float, float]]) -> None:
        self.points = list(points)


def layout(model: RunModel) -> tuple[dict[str, tuple[float, float, float]], dict[int, list]]:
    """Centre and width of each step box, and the routed points of each edge (by index).

    grandalf lays layers out top to bottom; we draw left to right, so its x is our y.
    """
    try:
        from grandalf.graphs import Edge, Graph, Vertex
        from grandalf.layouts import SugiyamaLayout
    except ImportError as e:
        raise _missing_viz(e) from e
    widths = {n.name: _width(n) for n in model.steps}
    vertices = {n.name: Vertex(n.name) for n in model.steps}
    for name, v in vertices.items():
        v.view = _Box(NODE_H, widths[name])
    edges = []
    for dep in model.edges:
        edge = Edge(vertices[dep.source], vertices[dep.target])
        edge.view = _Path()
        edges.append(edge)
    graph = Graph(list(vertices.values()), edges)
    boxes: dict[str, tuple[float, float, float]] = {}
    paths: dict[int, list] = {}
    top = MARGIN
    for component in graph.C:  # unconnected parts of the pipeline, stacked vertically
        sug = SugiyamaLayout(component)
        sug.xspace, sug.yspace = ROW_GAP, LAYER_GAP
        sug.init_all()
        sug.draw()
        ys = [v.view.xy[0] for v in component.sV]
        xs = [v.view.xy[1] for v in component.sV]
        low_y = min(y - v.view.w / 2 for y, v in zip(ys, component.sV, strict=True))
        low_x = min(x - v.view.h / 2 for x, v in zip(xs, component.sV, strict=True))
        high_y = top
        for v in component.sV:
            gy, gx = v.view.xy
            cx, cy = gx - low_x + MARGIN, gy - low_y + top
            boxes[v.data] = (cx, cy, v.view.h)
            high_y = max(high_y, cy + NODE_H / 2)
        for i, edge in enumerate(edges):
            if edge.v[0] in component.sV:
                paths[i] = [(gx - low_x + MARGIN, gy - low_y + top) for gy, gx in edge.view.points]
        top = high_y + ROW_GAP * 2
    return boxes, paths


def _edge_svg(model: RunModel, i: int, boxes: dict, points: list) -> str:
    e = model.edges[i]
    sx, sy, sw = boxes[e.source]
    tx, ty, tw = boxes[e.target]
    # Our own ends (right side of the source, left side of the target); grandalf's middle
    # points keep long edges clear of the boxes in between.
    pts = [(sx + sw / 2, sy), *points[1:-1], (tx - tw / 2 - 4, ty)]
    d = f"M{pts[0][0]:.1f},{pts[0][1]:.1f}"
    for (px, py), (qx, qy) in itertools.pairwise(pts):
        dx = (qx - px) / 2
        d += f" C{px + dx:.1f},{py:.1f} {qx - dx:.1f},{qy:.1f} {qx:.1f},{qy:.1f}"
    label = ", ".join(e.artifacts)
    title = f"{e.source} → {e.target}" + (f": {label}" if label else "")
    return (
        f"<g class='edge' data-source='{esc(e.source)}' data-target='{esc(e.target)}'>"
        f"<title>{esc(title)}</title>"
        f"<path d='{d}' fill='none' stroke='#78909c' stroke-width='1.5' "
        "marker-end='url(#runstack-arrow)'/></g>"
    )


def _node_svg(node: StepNode, box: tuple[float, float, float]) -> str:
    cx, cy, w = box
    x, y = cx - w / 2, cy - NODE_H / 2
    colour = colour_of(node.status)
    status = node.status + (
        f" · {format_duration(node.duration)}" if node.duration is not None else ""
    )
    title = f"{node.name} ({node.entrypoint or 'step'}): {status}; {_outputs_line(node)}"
    dash = " stroke-dasharray='4 3'" if node.status == "not run" else ""
    return (
        f"<g class='step' data-step='{esc(node.name)}' data-status='{esc(node.status)}'>"
        f"<title>{esc(title)}</title>"
        f"<rect x='{x:.1f}' y='{y:.1f}' width='{w:.1f}' height='{NODE_H:.0f}' rx='6' "
        f"fill='#fff' stroke='{colour}' stroke-width='2'{dash}/>"
        f"<rect x='{x:.1f}' y='{y:.1f}' width='6' height='{NODE_H:.0f}' rx='3' fill='{colour}'/>"
        + text(x + 14, y + 18, clip(node.name, w - 20), font_weight="600", fill="#212121")
        + text(x + 14, y + 34, clip(status, w - 20), fill=colour, class_="status")
        + text(x + 14, y + 49, clip(_outputs_line(node), w - 20), fill="#616161", font_size=11)
        + "</g>"
    )


def run_graph_svg(run: RunView | RunModel) -> str:
    """The run's DAG as SVG: one box per step (status colour, duration, output names) and one
    arrow per data dependency, laid out left to right."""
    model = run_model(run)
    label = f"Run graph of {model.name} ({model.pipeline}): {model.status}"
    if not model.steps:
        return svg(
            320, 40, [text(MARGIN, 24, "This run recorded no steps.")], kind="graph", label=label
        )
    boxes, paths = layout(model)
    width = max(cx + w / 2 for cx, _, w in boxes.values()) + MARGIN
    height = max(cy for _, cy, _ in boxes.values()) + NODE_H / 2 + MARGIN
    defs = (
        "<defs><marker id='runstack-arrow' viewBox='0 0 10 10' refX='9' refY='5' "
        "markerWidth='7' markerHeight='7' orient='auto-start-reverse'>"
        "<path d='M0,0 L10,5 L0,10 z' fill='#78909c'/></marker></defs>"
    )
    body: list[Any] = [defs]
    body += [_edge_svg(model, i, boxes, paths.get(i, [])) for i in range(len(model.edges))]
    body += [_node_svg(n, boxes[n.name]) for n in model.steps]
    return svg(width, height, body, kind="graph", label=label)
