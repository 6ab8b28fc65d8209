"""Built-in materializers: exact round trips, no pickle, and clear refusals."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from runstack.exceptions import MaterializerError
from runstack.materializers import (
    Artifact,
    BuiltInMaterializer,
    NumpyMaterializer,
    PandasMaterializer,
    registry,
)


def roundtrip(tmp_path: Path, value: Any, materializer: type | None = None) -> Any:
    klass = materializer or registry.get(type(value))
    tmp_path.mkdir(exist_ok=True)
    klass(Artifact(str(tmp_path))).handle_return(value)
    return klass(Artifact(str(tmp_path))).handle_input(type(value))


@pytest.mark.parametrize(
    "value",
    [
        0,
        -7,
        2**70,
        1.5,
        True,
        False,
        "",
        "ünïcode",
        b"\x00\xffbytes",
        None,
        [],
        [1, "a", None, [2.5]],
        {"a": 1, "b": [True]},
        (1, 2),
        (1, (2, 3), [4]),
        {1: "int key", (2, 3): "tuple key"},
        {"__runstack_type__": "not a tag"},
        {1, 2, 3},
        frozenset({"a"}),
        [(1, 2), {"x": (3,)}],
    ],
)
def test_builtin_values_round_trip_exactly(tmp_path: Path, value: Any) -> None:
    back = roundtrip(tmp_path, value)
    assert back == value and type(back) is type(value)


def test_special_floats(tmp_path: Path) -> None:
    back = roundtrip(tmp_path, [math.inf, -math.inf, math.nan])
    assert back[:2] == [math.inf, -math.inf] and math.isnan(back[2])


def test_plain_values_are_readable_json_on_disk(tmp_path: Path) -> None:
    BuiltInMaterializer(Artifact(str(tmp_path))).handle_return({"accuracy": 0.9, "labels": ["a"]})
    assert json.loads((tmp_path / "data.json").read_text()) == {"accuracy": 0.9, "labels": ["a"]}


def test_objects_inside_containers_are_refused(tmp_path: Path) -> None:
    with pytest.raises(MaterializerError, match=r"cannot store a builtins\.object inside"):
        BuiltInMaterializer(Artifact(str(tmp_path))).handle_return([object()])


def test_registry_matches_subclasses_and_lazy_libraries() -> None:
    class MyDict(dict):
        pass

    assert registry.get(MyDict) is BuiltInMaterializer
    assert registry.get(bool) is BuiltInMaterializer
    assert registry.get(np.ndarray) is NumpyMaterializer
    assert registry.get(pd.DataFrame) is PandasMaterializer
    with pytest.raises(MaterializerError, match="No materializer is registered for type"):
        registry.get(object)


@pytest.mark.parametrize(
    "array",
    [
        np.arange(12, dtype=np.float64).reshape(3, 4),
        np.array(3.5),
        np.arange(20)[::3],
        np.zeros((0, 5), dtype=np.int8),
        np.array(["a", "bc"]),
        np.array([(1, 2.0)], dtype=[("a", "i4"), ("b", "f8")]),
    ],
)
def test_numpy_round_trip(tmp_path: Path, array: np.ndarray) -> None:
    back = roundtrip(tmp_path, array)
    assert back.dtype == array.dtype and back.shape == array.shape
    np.testing.assert_array_equal(back, array)


def test_numpy_refuses_object_arrays(tmp_path: Path) -> None:
    with pytest.raises(MaterializerError, match=r"dtype=object.*pickle"):
        roundtrip(tmp_path, np.array([{"a": 1}], dtype=object))


def test_pandas_round_trip_keeps_index_dtypes_and_series_names(tmp_path: Path) -> None:
    df = pd.DataFrame(
        {
            "n": [1, 2, 3],
            "f": [0.5, None, 2.0],
            "cat": pd.Categorical(["a", "b", "a"]),
            "when": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-03"]),
        },
        index=pd.Index(["x", "y", "z"], name="key"),
    )
    pd.testing.assert_frame_equal(roundtrip(tmp_path / "df", df), df)
    series = pd.Series([1.0, 2.0], name="score")
    pd.testing.assert_series_equal(roundtrip(tmp_path / "s", series), series)
    empty = pd.DataFrame({"a": pd.Series([], dtype="int64")})
    pd.testing.assert_frame_equal(roundtrip(tmp_path / "e", empty), empty)
