"""NumPy arrays: shapes, dtypes, memory order, 0-d, views; large ones memory-mapped."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from runstack.exceptions import MaterializerError
from runstack.materializers import Artifact, NumpyMaterializer
from runstack.pipelines import pipeline
from runstack.repository import Repository
from runstack.steps import step

CASES = {
    "zero-d": np.array(3.25),
    "empty": np.zeros((0, 3), dtype=np.int16),
    "fortran": np.asfortranarray(np.arange(12, dtype=np.float32).reshape(3, 4)),
    "strided view": np.arange(40).reshape(5, 8)[::2, 1::3],
    "transposed": np.arange(6, dtype=np.uint8).reshape(2, 3).T,
    "structured": np.array([(1, 2.0), (3, 4.0)], dtype=[("a", "i4"), ("b", "f8")]),
    "unicode": np.array(["\u03b1", "beta", ""]),
    "datetime": np.array(["2024-01-01", "NaT"], dtype="datetime64[D]"),
    "special floats": np.array([[np.nan, np.inf], [-0.0, 1e-300]]),
}


@pytest.mark.parametrize("name", list(CASES))
def test_round_trip_keeps_values_dtype_shape_and_order(
    name: str, roundtrip: Callable[..., Any]
) -> None:
    value = CASES[name]
    back = roundtrip(value)
    assert isinstance(back, np.ndarray)
    assert back.dtype == value.dtype and back.shape == value.shape
    np.testing.assert_array_equal(back, value)
    if value.flags.f_contiguous and not value.flags.c_contiguous:
        assert back.flags.f_contiguous


def test_object_arrays_are_refused_with_a_way_out(roundtrip: Callable[..., Any]) -> None:
    with pytest.raises(MaterializerError, match="dtype=object.*pickle"):
        roundtrip(np.array([{"a": 1}, None], dtype=object))


def test_large_local_arrays_are_memory_mapped_copy_on_write(tmp_path: Path) -> None:
    class SmallThreshold(NumpyMaterializer):
        ASSOCIATED_TYPES = ()  # a reading variant; the default stays registered for ndarray
        MMAP_THRESHOLD = 1024

    big = np.arange(10_000, dtype=np.float64).reshape(100, 100)
    art = Artifact(str(tmp_path))
    NumpyMaterializer(art).handle_return(big)
    assert not isinstance(NumpyMaterializer(art).handle_input(np.ndarray), np.memmap)
    mapped = SmallThreshold(art).handle_input(np.ndarray)
    assert isinstance(mapped, np.memmap)
    np.testing.assert_array_equal(mapped, big)
    mapped[0, 0] = -1.0  # the step's copy changes, never the stored artifact
    assert NumpyMaterializer(art).handle_input(np.ndarray)[0, 0] == 0.0


@step
def make_views() -> np.ndarray:
    return np.arange(24, dtype=np.int64).reshape(4, 6)[:, ::2].T


@step
def column_sums(a: np.ndarray) -> np.ndarray:
    return a.sum(axis=0)


@pipeline
def array_pipeline(make, total):
    total(make())


def test_arrays_flow_between_steps_and_read_back(repo: Repository) -> None:
    run = array_pipeline(make_views(), column_sums()).run()
    made = run.get_step("make").output
    assert made.materializer.endswith("NumpyMaterializer")
    np.testing.assert_array_equal(made.read(), np.arange(24).reshape(4, 6)[:, ::2].T)
    np.testing.assert_array_equal(run.get_step("total").output.read(), [6, 24, 42, 60])
