"""Keras 3 models in the ``.keras`` format, on the PyTorch backend."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("KERAS_BACKEND", "torch")

import keras  # the backend is chosen when keras is first imported
import numpy as np
import pytest

from runstack.materializers import Artifact, KerasModelMaterializer, registry
from runstack.pipelines import pipeline
from runstack.repository import Repository
from runstack.steps import Output, step, trainer

# Keras' own variables trip NumPy 2's __array__(copy=...) deprecation; not ours to fix.
pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
)

X = np.random.default_rng(0).normal(size=(64, 3)).astype("float32")
Y = (X.sum(axis=1) > 0).astype("float32")


@keras.saving.register_keras_serializable(package="runstack_tests")
class Scale(keras.layers.Layer):
    """A custom layer: registered, so the model reads back in safe mode."""

    def __init__(self, factor: float = 2.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.factor = factor

    def call(self, x: Any) -> Any:
        return x * self.factor

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "factor": self.factor}


def sequential() -> keras.Model:
    model = keras.Sequential(
        [
            keras.Input((3,)),
            Scale(0.5),
            keras.layers.Dense(4),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    return model


def functional() -> keras.Model:
    inputs = keras.Input((3,))
    hidden = keras.layers.Dense(5, activation="relu")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(hidden))
    model.compile(optimizer="sgd", loss="binary_crossentropy")
    return model


@pytest.mark.parametrize("build", [sequential, functional])
def test_fitted_models_predict_the_same_after_reload(
    build: Callable[[], keras.Model], roundtrip: Callable[..., Any]
) -> None:
    keras.utils.set_random_seed(0)
    model = build()
    model.fit(X, Y, epochs=2, batch_size=16, verbose=0)
    assert registry.get(type(model)) is KerasModelMaterializer  # ahead of torch's nn.Module
    back = roundtrip(model)
    np.testing.assert_allclose(back.predict(X, verbose=0), model.predict(X, verbose=0), rtol=1e-6)
    assert back.optimizer.__class__ is model.optimizer.__class__
    back.fit(X, Y, epochs=1, verbose=0)  # the compile state came back: training goes on


def test_the_file_is_a_native_keras_archive(tmp_path: Path) -> None:
    KerasModelMaterializer(Artifact(str(tmp_path))).handle_return(functional())
    assert (tmp_path / "model.keras").read_bytes()[:2] == b"PK"  # a zip holding config + weights
    assert '"backend": "torch"' in (tmp_path / "meta.json").read_text()


@step
def features() -> Output(x=np.ndarray, y=np.ndarray):
    return X, Y


@trainer
def fit_keras(x: np.ndarray, y: np.ndarray) -> keras.Model:
    keras.utils.set_random_seed(1)
    model = sequential()
    model.fit(x, y, epochs=2, batch_size=16, verbose=0)
    return model


@pipeline
def keras_pipeline(data, train):
    train(*data())


def test_a_keras_model_flows_out_of_a_trainer_and_reads_back(repo: Repository) -> None:
    run = keras_pipeline(features(), fit_keras()).run()
    output = run.get_step("train").output
    assert output.materializer.endswith("KerasModelMaterializer")
    model = output.read(materializer=KerasModelMaterializer)  # as the seed page reads it
    assert isinstance(model, keras.Model) and model.predict(X[:2], verbose=0).shape == (2, 1)


def test_runstack_picks_the_torch_backend_when_keras_backend_is_unset() -> None:
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    code = (
        "import os\n"
        "from runstack.materializers import KerasModelMaterializer\n"
        "import keras\n"
        "print(os.environ['KERAS_BACKEND'], keras.backend.backend())\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["torch", "torch"]


def test_a_model_that_cannot_be_loaded_back_fails_when_written(tmp_path: Path) -> None:
    from runstack.exceptions import MaterializerError

    inputs = keras.Input(shape=(3,))
    model = keras.Model(inputs, keras.layers.Lambda(lambda x: x * 2)(inputs))
    with pytest.raises(MaterializerError, match="cannot be loaded back.*Lambda"):
        KerasModelMaterializer(Artifact(str(tmp_path))).handle_return(model)
