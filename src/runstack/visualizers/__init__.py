"""Pictures and HTML of recorded runs, drawn once for the CLI report, notebooks and dashboard.

Every function returns a string: SVG (a standalone ``<svg>`` element, also valid inline in
HTML) or an HTML fragment. Names from users (steps, outputs, columns, runs, values) are always
escaped text. Layout and drawing need the ``viz`` extra (``pip install 'runstack[viz]'``),
imported on first use.

- :func:`run_graph_svg` - a run's DAG: steps with status, duration and outputs.
- :func:`timeline_svg` - steps as bars on the run's time axis.
- :func:`statistics_svg` - per-column histograms / top values of a table's statistics.
- :func:`metric_svg` and :func:`metric_points` - a number across a pipeline's runs.
- :func:`html_of` - the notebook display of a view or a run diff.
- :func:`preview` - a bounded, pickle-free look into an artifact (table head, statistics...).
- :func:`report_html` - a self-contained HTML report of one or more runs.
"""

from __future__ import annotations

from runstack.visualizers._graph import run_graph_svg
from runstack.visualizers._metric import metric_svg
from runstack.visualizers._metrics import metric_points
from runstack.visualizers._model import DataEdge, RunModel, StepNode, run_model
from runstack.visualizers._notebook import to_html as html_of
from runstack.visualizers._preview import Preview, preview
from runstack.visualizers._report import report_html
from runstack.visualizers._stats import statistics_svg
from runstack.visualizers._timeline import timeline_svg

__all__ = [
    "DataEdge",
    "Preview",
    "RunModel",
    "StepNode",
    "html_of",
    "metric_points",
    "metric_svg",
    "preview",
    "report_html",
    "run_graph_svg",
    "run_model",
    "statistics_svg",
    "timeline_svg",
]
