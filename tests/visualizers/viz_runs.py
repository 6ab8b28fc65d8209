"""Runs to draw: a pipeline with a table, an array, scalars, a pickle-based
output and a failing variant."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from runstack.exceptions import StepExecutionError
from runstack.materializers import BaseMaterializer
from runstack.pipelines import pipeline
from runstack.post_execution import RunView
from runstack.repository import Repository
from runstack.steps import BaseStepConfig, Output, step


class Opaque:
    """A model-like object stored in a pickle-like format that display must never load."""


class ExplodingMaterializer(BaseMaterializer):
    """Writes a file and records it as pickle-based; reading it raises, like an unpickling
    that must not happen."""

    ASSOCIATED_TYPES = (Opaque,)
    reads = 0

    def handle_return(self, data: Any) -> None:
        with self.artifact.open("model.pkl", "wb") as f:
            f.write(b"\x80\x04not really a pickle")
        self.storage_format = "pickle"

    def handle_input(self, data_type: type) -> Any:
        type(self).reads += 1
        raise RuntimeError("display loaded a pickle-based artifact")


class TrainConfig(BaseStepConfig):
    lr: float = 0.1
    fail: bool = False


@step
def load() -> Output(table=pd.DataFrame, features=np.ndarray):
    print("loaded 200 rows")
    table = pd.DataFrame(
        {
            "age": np.linspace(20, 60, 200),
            "income": [None if i % 10 == 0 else float(i) for i in range(200)],
            "city": ["oslo", "rome", "rome", "lima"] * 50,
        }
    )
    return table, np.arange(12.0).reshape(3, 4)


@step
def train(config: TrainConfig, table: pd.DataFrame, features: np.ndarray) -> Output(
    model=Opaque, accuracy=float
):
    if config.fail:
        raise ValueError("diverged")
    return Opaque(), 0.5 + config.lr


@step
def evaluate(table: pd.DataFrame, accuracy: float) -> Output(report=dict):
    return {"rows": len(table), "accuracy": accuracy}


@pipeline
def training(load, train, evaluate):
    table, features = load()
    model, accuracy = train(table, features)
    evaluate(table, accuracy)


def run_training(lr: float = 0.1, fail: bool = False, name: str | None = None) -> RunView:
    instance = training(load(), train(TrainConfig(lr=lr, fail=fail)), evaluate())
    if fail:
        with pytest.raises(StepExecutionError):
            instance.run(run_name=name)
    else:
        instance.run(run_name=name)
    history = Repository().get_pipeline("training")
    return history.get_runs(limit=1, newest_first=True)[0]


# (producer step, consumer step): one arrow each in the run graph.
DEPENDENCIES = {("load", "train"), ("load", "evaluate"), ("train", "evaluate")}
