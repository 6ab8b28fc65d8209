"""CLI fixtures: a click runner bound to ``runstack``, and a pipeline file to run."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from runstack.cli import main

PIPELINE_FILE = textwrap.dedent(
    """
    import numpy as np
    import pandas as pd

    from runstack.pipelines import pipeline
    from runstack.steps import BaseStepConfig, Output, step


    class LoadConfig(BaseStepConfig):
        rows: int = 4


    class TrainConfig(BaseStepConfig):
        scale: float = 1.0
        fail: bool = False


    @step
    def load(config: LoadConfig) -> pd.DataFrame:
        return pd.DataFrame({"x": range(config.rows), "y": [i * 2.0 for i in range(config.rows)]})


    @step
    def train(df: pd.DataFrame, config: TrainConfig) -> Output(weights=np.ndarray, loss=float):
        if config.fail:
            raise ValueError("diverged: loss is nan")
        return np.ones((2, 3)) * config.scale, float(df["y"].sum())


    @pipeline
    def training(load, train):
        train(load())


    training_pipeline = training(load=load(), train=train())

    if __name__ == "__main__":
        raise SystemExit("the CLI must not run the __main__ block")
    """
)

Invoke = Callable[..., Result]


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch) -> Invoke:
    """``cli("stack", "list", code=0)`` runs ``runstack stack list`` in-process."""
    monkeypatch.setenv("RUNSTACK_PROGRESS", "plain")
    runner = CliRunner()

    def invoke(*args: str, code: int | None = 0) -> Result:
        result = runner.invoke(main, list(args), prog_name="runstack")
        if code is not None and result.exit_code != code:
            raise AssertionError(
                f"runstack {' '.join(args)} exited {result.exit_code}, expected {code}\n"
                f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}\n"
                f"exception: {result.exception!r}"
            )
        return result

    return invoke


@pytest.fixture
def pipeline_file(isolated: Path) -> Path:
    path = isolated / "train_pipeline.py"
    path.write_text(PIPELINE_FILE)
    return path


@pytest.fixture
def two_runs(cli: Invoke, repo: Any, pipeline_file: Path) -> list[str]:
    """Two runs of the training pipeline, the second with rows=6 (so `load` re-runs)."""
    cli("pipeline", "run", str(pipeline_file), "--run-name", "first")
    config = pipeline_file.parent / "more.yaml"
    config.write_text("steps:\n  load:\n    parameters:\n      rows: 6\n")
    cli("pipeline", "run", str(pipeline_file), "-c", str(config), "--run-name", "second")
    return ["first", "second"]
