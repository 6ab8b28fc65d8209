"""Train a scikit-learn model and a PyTorch model on a bundled data set, and keep the best.

Steps: import the breast-cancer data that ships with scikit-learn (no download), split it,
train a logistic regression and a small neural network, evaluate both on the held-out part,
and in the last step look at every earlier run of this pipeline to decide whether this run's
best model beats all of them. Run it with ``python examples/ml/run.py`` (see ``--help``).
"""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from torch import nn
from torch.utils.data import Dataset, TensorDataset

from runstack.pipelines import pipeline
from runstack.post_execution import RunView
from runstack.steps import (
    BaseStepConfig,
    Output,
    StepContext,
    evaluator,
    importer,
    splitter,
    step,
    trainer,
)

PIPELINE = "ml_example"
TARGET = "target"


class MLP(nn.Module):
    """A small classifier that standardizes its inputs with statistics learnt in training.

    ``get_config`` lets runstack store it as safetensors weights plus these arguments, and
    rebuild it on read without pickle.
    """

    def __init__(self, n_features: int, hidden: int = 16) -> None:
        super().__init__()
        self.n_features, self.hidden = n_features, hidden
        self.register_buffer("mean", torch.zeros(n_features))
        self.register_buffer("std", torch.ones(n_features))
        self.net = nn.Sequential(nn.Linear(n_features, hidden), nn.ReLU(), nn.Linear(hidden, 2))

    def get_config(self) -> dict[str, int]:
        return {"n_features": self.n_features, "hidden": self.hidden}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net((x - self.mean) / self.std)


class SplitConfig(BaseStepConfig):
    test_size: float = 0.25
    seed: int = 0


class DeviceConfig(BaseStepConfig):
    device: str = "cpu"


class LogisticConfig(BaseStepConfig):
    C: float = 1.0


class TorchConfig(BaseStepConfig):
    epochs: int = 150
    hidden: int = 16
    learning_rate: float = 0.01
    seed: int = 0
    device: str = "cpu"


@importer
def load_data() -> pd.DataFrame:
    """The Wisconsin breast-cancer data set bundled with scikit-learn (569 rows, 30 features)."""
    return load_breast_cancer(as_frame=True).frame


@splitter
def split(data: pd.DataFrame, config: SplitConfig) -> Output(train=pd.DataFrame, test=pd.DataFrame):
    """A stratified train/test split."""
    train, test = train_test_split(
        data, test_size=config.test_size, random_state=config.seed, stratify=data[TARGET]
    )
    return train, test


def _tensors(frame: pd.DataFrame, device: str | torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.tensor(frame.drop(columns=TARGET).to_numpy(np.float32), device=device)
    return x, torch.tensor(frame[TARGET].to_numpy(np.int64), device=device)


@step
def to_tensors(train: pd.DataFrame, config: DeviceConfig) -> TensorDataset:
    """The training part as tensors (features, labels) on the configured device."""
    return TensorDataset(*_tensors(train, config.device))


@trainer
def train_logistic(train: pd.DataFrame, config: LogisticConfig) -> Pipeline:
    """Standardize, then logistic regression."""
    model = make_pipeline(StandardScaler(), LogisticRegression(C=config.C, max_iter=1000))
    return model.fit(train.drop(columns=TARGET), train[TARGET])


@trainer
def train_mlp(dataset: Dataset, config: TorchConfig) -> nn.Module:
    """Full-batch Adam on the MLP, on the configured device."""
    torch.manual_seed(config.seed)
    x, y = dataset.tensors  # type: ignore[attr-defined]
    x, y = x.to(config.device), y.to(config.device)
    model = MLP(x.shape[1], config.hidden).to(config.device)
    model.mean.copy_(x.mean(dim=0))
    model.std.copy_(x.std(dim=0).clamp_min(1e-6))
    opt = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    for _ in range(config.epochs):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    return model.eval()


@evaluator
def evaluate_logistic(model: BaseEstimator, test: pd.DataFrame) -> float:
    """Accuracy on the test part."""
    predicted = model.predict(test.drop(columns=TARGET))
    return float((predicted == test[TARGET].to_numpy()).mean())


@evaluator
def evaluate_mlp(model: nn.Module, test: pd.DataFrame) -> Output(
    accuracy=float, probabilities=torch.Tensor
):
    """Accuracy on the test part, and the predicted probabilities (on the model's device)."""
    device = next(model.parameters()).device
    x, y = _tensors(test, device)
    with torch.no_grad():
        probabilities = model(x).softmax(dim=1)
    return (probabilities.argmax(dim=1) == y).sum().item() / len(y), probabilities


def best_accuracy(run: RunView) -> float | None:
    """The better of a finished run's two test accuracies (None if it has none)."""
    with contextlib.suppress(KeyError):  # a failed run lacks some outputs
        logistic = run.get_step("evaluate_logistic").output.read()
        mlp = run.get_step("evaluate_mlp").outputs["accuracy"].read()
        return max(logistic, mlp)
    return None


@step
def decide(context: StepContext, logistic_accuracy: float, mlp_accuracy: float) -> Output(
    winner=str, accuracy=float, promote=bool
):
    """Pick this run's better model; promote it only if it beats every earlier run's best."""
    winner = "logistic" if logistic_accuracy >= mlp_accuracy else "mlp"
    accuracy = max(logistic_accuracy, mlp_accuracy)
    history = context.metadata_store.get_pipeline(context.pipeline_name)
    earlier = [
        best
        for run in history.runs
        if run.name != context.run_name and (best := best_accuracy(run)) is not None
    ]
    return winner, accuracy, all(accuracy > best for best in earlier)


@pipeline(name=PIPELINE)
def ml_pipeline(
    load, divide, tensors, fit_logistic, fit_mlp, evaluate_logistic, evaluate_mlp, decide
):
    train, test = divide(load())
    logistic = fit_logistic(train)
    mlp = fit_mlp(tensors(train))
    logistic_accuracy = evaluate_logistic(logistic, test)
    mlp_accuracy, _probabilities = evaluate_mlp(mlp, test)
    decide(logistic_accuracy, mlp_accuracy)


def check_device(device: str) -> None:
    """Refuse a torch device this machine does not have, before anything runs."""
    try:
        dev = torch.device(device)
    except RuntimeError as e:
        raise ValueError(f"{device!r} is not a torch device ({e}); use cpu, cuda or mps.") from e
    if dev.type == "cuda" and not (
        torch.cuda.is_available() and (dev.index or 0) < torch.cuda.device_count()
    ):
        why = (
            "this PyTorch is built without CUDA"
            if torch.version.cuda is None
            else f"torch.cuda.device_count() is {torch.cuda.device_count()}"
        )
        raise ValueError(
            f"device {device!r} is not available here ({why}). Run with --device cpu, or on a "
            "machine with an NVIDIA GPU and a CUDA build of PyTorch."
        )
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError("device 'mps' is not available here; run with --device cpu.")


def build(*, C: float = 1.0, epochs: int = 150, hidden: int = 16, device: str = "cpu") -> Any:
    """The pipeline with its steps configured; an unavailable ``device`` is a ValueError."""
    check_device(device)
    return ml_pipeline(
        load=load_data(),
        divide=split(),
        tensors=to_tensors(device=device),
        fit_logistic=train_logistic(C=C),
        fit_mlp=train_mlp(epochs=epochs, hidden=hidden, device=device),
        evaluate_logistic=evaluate_logistic(),
        evaluate_mlp=evaluate_mlp(),
        decide=decide(),
    )
