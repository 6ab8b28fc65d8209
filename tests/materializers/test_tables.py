"""pandas, Arrow and polars tables as Parquet; statistics and schema read from any of them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

from runstack.exceptions import MaterializerError
from runstack.materializers import (
    ArrowMaterializer,
    BuiltInMaterializer,
    PandasMaterializer,
    PolarsMaterializer,
    SchemaMaterializer,
    StatisticsMaterializer,
)
from runstack.materializers._tabular import ColumnStatistics, TableSchema, TableStatistics
from runstack.pipelines import pipeline
from runstack.repository import Repository
from runstack.steps import Output, step


def realistic_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "price": [10.5, np.nan, 7.25, 3.0, 10.5],
            "qty": pd.array([1, 2, None, 4, 5], dtype="Int64"),
            "city": pd.Categorical(["oslo", "rome", "oslo", None, "oslo"], ordered=True),
            "when": pd.date_range("2024-03-01", periods=5, freq="h", tz="Europe/Oslo"),
            "note": ["a", None, "c", "d", "e"],
            "ok": [True, False, True, True, False],
        },
        index=pd.Index([10, 20, 30, 40, 50], name="order_id"),
    )


PANDAS_CASES = {
    "realistic": realistic_frame(),
    "empty": pd.DataFrame(),
    "empty with typed columns": pd.DataFrame({"x": pd.Series([], dtype="float32"), "y": []}),
    "integer column names": pd.DataFrame(np.arange(6).reshape(3, 2)),
    "multiindex rows": pd.DataFrame(
        {"v": [1, 2, 3]}, index=pd.MultiIndex.from_tuples([("a", 1), ("a", 2), ("b", 1)])
    ),
}


@pytest.mark.parametrize("name", list(PANDAS_CASES))
def test_pandas_frames_round_trip_exactly(name: str, roundtrip: Callable[..., Any]) -> None:
    frame = PANDAS_CASES[name]
    back = roundtrip(frame)
    pd.testing.assert_frame_equal(back, frame)


def test_pandas_series_keep_name_dtype_and_index(roundtrip: Callable[..., Any]) -> None:
    s = pd.Series(pd.Categorical(["b", "a", "b"]), index=["x", "y", "z"], name=7)
    pd.testing.assert_series_equal(roundtrip(s), s)
    unnamed = pd.Series([1.0, 2.0])
    pd.testing.assert_series_equal(roundtrip(unnamed), unnamed)


def test_pandas_duplicate_columns_are_refused_with_a_fix(roundtrip: Callable[..., Any]) -> None:
    with pytest.raises(MaterializerError, match="duplicate column names.*Rename"):
        roundtrip(pd.DataFrame([[1, 2]], columns=["a", "a"]))


def test_arrow_tables_round_trip_with_types_parquet_lacks(roundtrip: Callable[..., Any]) -> None:
    table = pa.table(
        {
            "id": pa.array([1, 2, None], pa.int32()),
            "tag": pa.array(["x", "y", "x"]).dictionary_encode(),
            "took": pa.array([1, 2, 3], pa.duration("ms")),
            "at": pa.array([dt.datetime(2024, 1, 1)] * 3, pa.timestamp("us", tz="UTC")),
            "text": pa.array(["a", "b", None], pa.large_string()),
        }
    ).replace_schema_metadata({"source": "test"})
    back = roundtrip(table)
    assert back.schema.equals(table.schema, check_metadata=True)
    assert back.equals(table)
    assert roundtrip(table.slice(0, 0)).num_rows == 0


def test_polars_frames_round_trip(roundtrip: Callable[..., Any]) -> None:
    frame = pl.DataFrame(
        {
            "n": [1, None, 3],
            "f": [0.5, float("nan"), None],
            "cat": pl.Series(["u", "v", "u"], dtype=pl.Categorical),
            "level": pl.Series(["lo", "hi", "lo"], dtype=pl.Enum(["lo", "hi"])),
            "at": [dt.datetime(2024, 1, d) for d in (1, 2, 3)],
            "tags": [["a"], [], None],
        }
    ).with_columns(pl.col("at").dt.replace_time_zone("UTC"))
    back = roundtrip(frame)
    assert back.schema == frame.schema
    assert back.equals(frame)
    assert roundtrip(pl.DataFrame()).shape == (0, 0)


def test_statistics_describe_numbers_categories_and_times(roundtrip: Callable[..., Any]) -> None:
    stats = _read_as(realistic_frame(), PandasMaterializer, StatisticsMaterializer, roundtrip)
    assert isinstance(stats, TableStatistics) and stats.num_rows == 5
    assert list(stats.columns) == ["price", "qty", "city", "when", "note", "ok"]
    price = stats["price"]
    assert (price.count, price.nulls) == (4, 1)
    assert price.mean == pytest.approx(7.8125)
    assert price.std == pytest.approx(np.std([10.5, 7.25, 3.0, 10.5], ddof=1))
    assert (price.min, price.max) == (3.0, 10.5)
    assert price.quantiles[0.5] == pytest.approx(8.875)
    assert (stats["qty"].count, stats["qty"].nulls, stats["qty"].max) == (4, 1, 5)
    city = stats["city"]
    assert city.type.startswith("dictionary") and city.mean is None
    assert city.top_values == {"oslo": 3, "rome": 1} and city.nulls == 1
    assert stats["ok"].top_values == {"True": 3, "False": 2}
    when = stats["when"]
    assert when.min == pd.Timestamp("2024-03-01 00:00", tz="Europe/Oslo")
    assert when.max == pd.Timestamp("2024-03-01 04:00", tz="Europe/Oslo")
    text = str(stats)
    assert "price (double): count=4, nulls=1, mean=7.8125" in text and "top={'oslo': 3" in text
    assert stats.to_dict()["columns"]["qty"]["nulls"] == 1
    with pytest.raises(KeyError, match="No column 'nope'; columns are"):
        stats["nope"]


@pytest.mark.parametrize(
    ("table", "writer"),
    [
        (pa.table({"x": [1.0, 2.0, None], "s": ["a", "a", "b"]}), ArrowMaterializer),
        (pl.DataFrame({"x": [1.0, 2.0, None], "s": ["a", "a", "b"]}), PolarsMaterializer),
    ],
    ids=["arrow", "polars"],
)
def test_statistics_and_schema_work_on_arrow_and_polars_artifacts(
    table: Any, writer: Any, roundtrip: Callable[..., Any]
) -> None:
    stats = _read_as(table, writer, StatisticsMaterializer, roundtrip)
    assert stats["x"].mean == 1.5 and stats["x"].nulls == 1
    assert stats["s"].top_values == {"a": 2, "b": 1}
    schema = _read_as(table, writer, SchemaMaterializer, roundtrip)
    assert schema.names == ["x", "s"] and schema["x"].type == "double"


def test_statistics_of_an_empty_frame_and_a_single_value() -> None:
    from runstack.materializers._tabular import statistics_of

    empty = statistics_of(pd.DataFrame({"x": pd.Series([], dtype="float64")}))
    assert empty.num_rows == 0 and empty["x"] == ColumnStatistics("x", "double", 0, 0)
    nan = statistics_of(pl.DataFrame({"x": [1.0, float("nan"), None, 3.0]}))["x"]
    assert (nan.count, nan.nulls, nan.mean, nan.max) == (2, 2, 2.0, 3.0)  # NaN counts as null
    one = statistics_of(pl.DataFrame({"x": [4]}))
    assert one["x"].std is None and "std" not in str(one)  # no sample std for one value


def test_schema_lists_names_types_and_nullability(roundtrip: Callable[..., Any]) -> None:
    schema = _read_as(realistic_frame(), PandasMaterializer, SchemaMaterializer, roundtrip)
    assert isinstance(schema, TableSchema) and schema.num_rows == 5
    assert schema.names == ["price", "qty", "city", "when", "note", "ok"]  # index left out
    assert schema["qty"].type == "int64" and schema["when"].type.startswith("timestamp[")
    strict = pa.schema([pa.field("id", pa.int64(), nullable=False)])
    strict_schema = _read_as(
        pa.table({"id": [1, 2]}, schema=strict), ArrowMaterializer, SchemaMaterializer, roundtrip
    )
    assert strict_schema["id"].nullable is False
    assert "id: int64 not null" in str(strict_schema)


def test_statistics_of_a_non_table_artifact_says_why(roundtrip: Callable[..., Any]) -> None:
    with pytest.raises(MaterializerError, match="holds no table"):
        _read_as(3, BuiltInMaterializer, StatisticsMaterializer, roundtrip)


def _read_as(value: Any, writer: Any, reader: Any, roundtrip: Callable[..., Any]) -> Any:
    """Write ``value`` with ``writer``, then read the same artifact with ``reader``."""

    class Both(writer):  # type: ignore[misc,valid-type]
        ASSOCIATED_TYPES = ()

        def handle_input(self, data_type: type) -> Any:
            return reader(self.artifact).handle_input(data_type)

    return roundtrip(value, Both)


@step
def orders() -> pd.DataFrame:
    return realistic_frame()


@step
def split(frame: pd.DataFrame) -> Output(cheap=pd.DataFrame, prices=pa.Table):
    return frame[frame["price"] < 10], pa.Table.from_pandas(frame[["price"]])


@pipeline
def table_pipeline(load, splitter):
    splitter(load())


def test_tables_flow_between_steps_and_read_back_with_any_view(repo: Repository) -> None:
    run = table_pipeline(orders(), split()).run()
    output = run.get_step("load").output
    pd.testing.assert_frame_equal(output.read(), realistic_frame())
    pd.testing.assert_frame_equal(output.read(materializer=PandasMaterializer), realistic_frame())
    assert output.read(materializer=StatisticsMaterializer)["price"].count == 4
    assert output.read(materializer=SchemaMaterializer).names[0] == "price"
    cheap, prices = run.get_step("splitter").outputs.values()
    assert list(cheap.read().index) == [30, 40]
    assert prices.materializer.endswith("ArrowMaterializer")
    assert prices.read(materializer=StatisticsMaterializer)["price"].max == 10.5
