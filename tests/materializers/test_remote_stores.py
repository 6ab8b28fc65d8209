"""Every ML materializer also works on a non-local artifact store (fsspec's memory://)."""

from __future__ import annotations

import itertools
import os
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest
import torch
from sklearn.linear_model import LogisticRegression

from runstack.materializers import Artifact, SchemaMaterializer, StatisticsMaterializer, registry

os.environ.setdefault("KERAS_BACKEND", "torch")

_ids = itertools.count()


class Net(torch.nn.Module):
    def __init__(self, n: int) -> None:
        super().__init__()
        self.n = n
        self.linear = torch.nn.Linear(n, 1)

    def get_config(self) -> dict[str, int]:
        return {"n": self.n}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x)


def _values() -> dict[str, Any]:
    import keras

    x = np.arange(12, dtype="float32").reshape(6, 2)
    keras_model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    return {
        "pandas": pd.DataFrame({"a": [1, 2], "b": ["x", None]}),
        "arrow": pa.table({"a": [1, 2]}),
        "polars": pl.DataFrame({"a": [1, 2]}),
        "numpy": x,
        "sklearn": LogisticRegression().fit(x, [0, 1, 0, 1, 0, 1]),
        "tensor": torch.arange(4),
        "module (rebuilt)": Net(2),
        "module (pickled)": torch.nn.Sequential(torch.nn.Linear(2, 1)),
        "keras": keras_model,
    }


KINDS = [
    "pandas",
    "arrow",
    "polars",
    "numpy",
    "sklearn",
    "tensor",
    "module (rebuilt)",
    "module (pickled)",
    "keras",
]


@pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
)
@pytest.mark.parametrize("kind", KINDS)
def test_round_trip_through_a_remote_filesystem(kind: str) -> None:
    values = _values()
    assert list(values) == KINDS
    value = values[kind]
    art = Artifact(f"memory://runstack-tests/{kind.replace(' ', '_')}-{next(_ids)}")
    assert art.local_path("x") is None  # the remote code path, not the local shortcut
    art.fs.makedirs(art.uri, exist_ok=True)
    mat = registry.get(type(value))
    writer, reader = mat(art), mat(art)
    writer.handle_return(value)
    reader.recorded_format = writer.storage_format  # what the metadata store records
    back = reader.handle_input(type(value))
    assert type(back) is type(value)
    if kind in ("pandas", "arrow", "polars"):
        assert back.equals(value)
        assert SchemaMaterializer(art).handle_input(object).names[0] == "a"
        assert StatisticsMaterializer(art).handle_input(object)["a"].max == 2
    elif kind == "numpy":
        np.testing.assert_array_equal(back, value)
    elif kind == "sklearn":
        np.testing.assert_array_equal(back.coef_, value.coef_)
    elif kind == "tensor":
        assert torch.equal(back, value)
    elif kind.startswith("module"):
        x = torch.ones(3, 2)
        assert torch.equal(back(x), value(x))
    else:
        x = np.ones((3, 2), dtype="float32")
        np.testing.assert_allclose(back.predict(x, verbose=0), value.predict(x, verbose=0))
