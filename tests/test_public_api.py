"""The public surface is small and locked; layers import downwards only; import stays light."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import runstack.materializers
import runstack.pipelines
import runstack.post_execution
import runstack.repository
import runstack.steps
import runstack.visualizers

ROOT = Path(__file__).resolve().parents[1]


def test_public_names_are_locked() -> None:
    assert sorted(runstack.steps.__all__) == [
        "BaseEvaluatorStep",
        "BaseImporterStep",
        "BaseSplitterStep",
        "BaseStep",
        "BaseStepConfig",
        "BaseTrainerStep",
        "ExecutionOptions",
        "Output",
        "StepContext",
        "evaluator",
        "importer",
        "splitter",
        "step",
        "trainer",
    ]
    assert sorted(runstack.pipelines.__all__) == ["BasePipeline", "pipeline"]
    assert "Repository" in runstack.repository.__all__
    assert {"ArtifactView", "PipelineView", "RunFilter", "RunView", "StepView"} <= set(
        runstack.post_execution.__all__
    )
    # The run diff and comparison (issue 12): the dashboard and reports depend on these shapes.
    assert {
        "ArrayDiff",
        "ArtifactDiff",
        "ComparisonRow",
        "ComponentChange",
        "Delta",
        "OpaqueDiff",
        "OutputDiff",
        "RunComparison",
        "RunDiff",
        "RunSummary",
        "StepDiff",
        "TableDiff",
        "ValueDiff",
        "compare_runs",
        "run_to_dict",
        "step_to_dict",
    } <= set(runstack.post_execution.__all__)
    assert {
        "BaseMaterializer",
        "BuiltInMaterializer",
        "NumpyMaterializer",
        "PandasMaterializer",
        "StatisticsMaterializer",
        "SchemaMaterializer",
    } <= set(runstack.materializers.__all__)
    assert sorted(runstack.visualizers.__all__) == [
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
    for module in (
        runstack.visualizers,
        runstack.steps,
        runstack.pipelines,
        runstack.materializers,
        runstack.post_execution,
    ):
        for name in module.__all__:
            assert getattr(module, name) is not None, (module.__name__, name)


def test_import_runstack_loads_nothing_heavy() -> None:
    code = (
        "import json, sys, runstack; "
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('sqlalchemy', 'pydantic', 'fsspec', 'pandas', 'numpy', 'pyarrow', 'alembic', 'rich'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []


def test_pictures_load_their_libraries_on_first_drawing_only() -> None:
    code = (
        "import json, sys, runstack.post_execution, runstack.visualizers, runstack.cli; "
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('grandalf', 'pandas', 'numpy', 'pyarrow'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []


def test_the_web_stack_is_imported_by_runstack_up_only() -> None:
    code = (
        "import json, sys, runstack.post_execution, runstack.visualizers, runstack.cli; "
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('fastapi', 'starlette', 'uvicorn', 'jinja2'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []
    import runstack.dashboard

    assert sorted(runstack.dashboard.__all__) == ["Source", "create_app", "open_source", "serve"]


def _tool(*command: str) -> subprocess.CompletedProcess[str]:
    executable = str(Path(sys.executable).parent / command[0])
    return subprocess.run([executable, *command[1:]], cwd=ROOT, capture_output=True, text=True)


def test_layer_contracts_hold() -> None:
    result = _tool("lint-imports")
    assert result.returncode == 0, result.stdout + result.stderr


def test_code_is_lint_and_type_clean() -> None:
    lint = _tool("ruff", "check", "src", "tests", "examples", "bench", "scripts")
    assert lint.returncode == 0, lint.stdout + lint.stderr
    types = _tool("mypy")
    assert types.returncode == 0, types.stdout + types.stderr
