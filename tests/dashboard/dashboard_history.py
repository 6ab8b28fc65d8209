"""A small recorded history for the dashboard tests: params, metrics, tables, a failure, a cache hit.

Runs of ``train_pipeline`` on the repository's active stack:

- ``r-1`` (lr 0.1) and ``r-2`` (lr 0.2): completed;
- ``r-3``: ``train`` fails (``fail=True``), with a traceback;
- ``r-4``: the same as ``r-2``: every step cached.

``load`` returns a DataFrame, an array and an int; ``train`` a float metric, a short string, a
pickle-based ``Blob`` (its materializer counts reads: previews must never load it) and a
string too long to preview.
"""

from __future__ import annotations

import contextlib
import pickle
from typing import Any

import numpy as np
import pandas as pd

from runstack.materializers import BaseMaterializer
from runstack.pipelines import pipeline
from runstack.repository import Repository
from runstack.steps import BaseStepConfig, Output, step

LOADS: list[str] = []  # every read of a Blob
BIG_TEXT = "x" * 100_000


class Blob:
    def __init__(self, value: Any) -> None:
        self.value = value


class BlobMaterializer(BaseMaterializer):
    """Stores a Blob with pickle, recorded as pickle-based."""

    ASSOCIATED_TYPES = (Blob,)

    def handle_input(self, data_type: type) -> Any:
        LOADS.append(self.artifact.uri)
        self.check_pickle_recorded()
        with self.artifact.open("blob.pkl", "rb") as f:
            return pickle.load(f)

    def handle_return(self, data: Any) -> None:
        self.storage_format = "pickle"
        with self.artifact.open("blob.pkl", "wb") as f:
            pickle.dump(data, f)


class LoadConfig(BaseStepConfig):
    rows: int = 5


class TrainConfig(BaseStepConfig):
    lr: float = 0.1
    fail: bool = False


@step
def load(config: LoadConfig) -> Output(table=pd.DataFrame, array=np.ndarray, rows=int):
    print(f"loading {config.rows} rows")
    df = pd.DataFrame(
        {"x": list(range(config.rows)), "kind": ["a", "b"] * (config.rows // 2) + ["a"]}
    )
    return df, np.arange(config.rows, dtype=np.float64), config.rows


@step
def train(config: TrainConfig, table: pd.DataFrame, array: np.ndarray) -> Output(
    accuracy=float, label=str, model=Blob, notes=str
):
    print(f"training with lr={config.lr}")
    if config.fail:
        raise ValueError("the loss diverged")
    return float(array.sum()) * config.lr, "fine", Blob(config.lr), BIG_TEXT


@pipeline
def train_pipeline(load, train):
    table, array, rows = load()
    train(table, array)


def record(repo: Repository) -> None:
    """Record r-1 .. r-4 (see the module docstring) on the active stack."""
    from runstack.exceptions import StepExecutionError

    train_pipeline(load(), train(config=TrainConfig(lr=0.1))).run(run_name="r-1")
    train_pipeline(load(), train(config=TrainConfig(lr=0.2))).run(run_name="r-2")
    with contextlib.suppress(StepExecutionError):
        train_pipeline(load(), train(config=TrainConfig(lr=0.3, fail=True))).run(run_name="r-3")
    train_pipeline(load(), train(config=TrainConfig(lr=0.2))).run(run_name="r-4")
