"""Read-only views of a tabular artifact: its per-column statistics and its schema.

They read the Parquet file a table materializer wrote (pandas, Arrow or polars); they never
write artifacts. ``statistics_of`` and ``schema_of`` compute the same for a table in memory.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from runstack.exceptions import MaterializerError
from runstack.materializers._base import BaseMaterializer

_PARQUET = "data.parquet"


@dataclass(frozen=True)
class ColumnSchema:
    name: str
    type: str
    nullable: bool


@dataclass(frozen=True)
class TableSchema:
    """Column names, types and nullability of a table."""

    columns: tuple[ColumnSchema, ...]
    num_rows: int

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def __getitem__(self, name: str) -> ColumnSchema:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"No column {name!r}; columns are {self.names}.")

    def to_dict(self) -> dict[str, Any]:
        return {"num_rows": self.num_rows, "columns": [asdict(c) for c in self.columns]}

    def __str__(self) -> str:
        lines = [f"{len(self.columns)} columns, {self.num_rows} rows"]
        lines += [f"  {c.name}: {c.type}{'' if c.nullable else ' not null'}" for c in self.columns]
        return "\n".join(lines)


@dataclass(frozen=True)
class ColumnStatistics:
    """Statistics of one column; numeric fields are None where they do not apply."""

    name: str
    type: str
    count: int
    nulls: int
    mean: float | None = None
    std: float | None = None
    min: Any = None
    max: Any = None
    quantiles: dict[float, float] = field(default_factory=dict)
    top_values: dict[str, int] = field(default_factory=dict)
    #: Numbers only: ``(low, high, count)`` per bin of equal width from min to max (the last
    #: bin includes max); computed on read, so artifacts written before it have it too.
    histogram: tuple[tuple[float, float, int], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __str__(self) -> str:
        parts = [f"count={self.count}", f"nulls={self.nulls}"]
        if self.mean is not None:
            parts.append(f"mean={self.mean:.6g}")
        if self.std is not None:
            parts.append(f"std={self.std:.6g}")
        if self.min is not None:
            parts += [f"min={self.min}", f"max={self.max}"]
        if self.quantiles:
            parts.append(
                "quantiles={"
                + ", ".join(f"{q:g}: {v:.6g}" for q, v in self.quantiles.items())
                + "}"
            )
        if self.top_values:
            parts.append(f"top={self.top_values}")
        return f"{self.name} ({self.type}): " + ", ".join(parts)


@dataclass(frozen=True)
class TableStatistics:
    """Per-column statistics of a table."""

    columns: dict[str, ColumnStatistics]
    num_rows: int

    def __getitem__(self, name: str) -> ColumnStatistics:
        try:
            return self.columns[name]
        except KeyError:
            raise KeyError(f"No column {name!r}; columns are {list(self.columns)}.") from None

    def to_dict(self) -> dict[str, Any]:
        return {
            "num_rows": self.num_rows,
            "columns": {n: c.to_dict() for n, c in self.columns.items()},
        }

    def __str__(self) -> str:
        lines = [f"{self.num_rows} rows, {len(self.columns)} columns"]
        lines += [f"  {c}" for c in self.columns.values()]
        return "\n".join(lines)


def _parquet_file(artifact: Any) -> Any:
    import pyarrow.parquet as pq

    local = artifact.local_path(_PARQUET)
    try:
        if local is not None:
            return pq.ParquetFile(local)
        return pq.ParquetFile(artifact.open(_PARQUET, "rb"))
    except FileNotFoundError:
        raise MaterializerError(
            f"Artifact {artifact.uri} holds no table ({_PARQUET} is missing): statistics and "
            "schema can be read only from artifacts written by a table materializer."
        ) from None


def _index_columns(arrow_schema: Any) -> set[str]:
    """Columns pandas stored its index in: they describe rows, not data, so views skip them."""
    meta = arrow_schema.pandas_metadata or {}
    return {c for c in meta.get("index_columns", []) if isinstance(c, str)}


def _schema_of(arrow_schema: Any, num_rows: int) -> TableSchema:
    index = _index_columns(arrow_schema)
    cols = tuple(
        ColumnSchema(f.name, str(f.type), f.nullable) for f in arrow_schema if f.name not in index
    )
    return TableSchema(cols, num_rows)


def _as_arrow(table: Any) -> Any:
    """A ``pyarrow.Table`` for an Arrow, pandas or polars table (no copy where possible)."""
    import pyarrow as pa

    if isinstance(table, pa.Table):
        return table
    module = type(table).__module__.split(".")[0]
    if module == "polars":
        return table.to_arrow()
    if module == "pandas":
        import pandas as pd

        if isinstance(table, pd.Series):
            table = table.to_frame()
        return pa.Table.from_pandas(table.set_axis([str(c) for c in table.columns], axis=1))
    raise MaterializerError(
        f"Statistics and schema are computed for pandas, polars and Arrow tables; got "
        f"{type(table).__module__}.{type(table).__qualname__}. Convert it to one of those."
    )


def schema_of(table: Any) -> TableSchema:
    """The :class:`TableSchema` of an in-memory pandas, polars or Arrow table."""
    arrow = _as_arrow(table)
    return _schema_of(arrow.schema, arrow.num_rows)


_QUANTILES = (0.25, 0.5, 0.75)
_TOP = 5
_BINS = 20


def _histogram(numbers: Any, low: float, high: float) -> tuple[tuple[float, float, int], ...]:
    """Counts of ``numbers`` (float64, no nulls) in ``_BINS`` equal bins over ``low..high``."""
    import math

    import pyarrow as pa
    import pyarrow.compute as pc

    if not (math.isfinite(low) and math.isfinite(high)):
        return ()  # an infinite value leaves no finite bin width
    if high == low:
        return ((low, high, len(numbers) - numbers.null_count),)
    width = (high - low) / _BINS
    index = pc.floor(pc.divide(pc.subtract(numbers, low), width))
    # The max falls in the last bin; nulls stay null (min_element_wise skips them by default).
    index = pc.min_element_wise(index, pa.scalar(float(_BINS - 1)), skip_nulls=False)
    counts = [0] * _BINS
    for row in pc.value_counts(index.drop_null().cast(pa.int64())).to_pylist():
        counts[row["values"]] += row["counts"]
    return tuple((low + i * width, low + (i + 1) * width, c) for i, c in enumerate(counts))


def _is_text(kind: Any) -> bool:
    import pyarrow as pa

    return bool(
        pa.types.is_string(kind)
        or pa.types.is_large_string(kind)
        or getattr(pa.types, "is_string_view", lambda _: False)(kind)
        or pa.types.is_boolean(kind)
    )


def _column_statistics(name: str, column: Any) -> ColumnStatistics:
    import pyarrow as pa
    import pyarrow.compute as pc

    kind = column.type
    shown = str(kind)
    if pa.types.is_dictionary(kind):  # categoricals: describe the values, not the codes
        column = column.cast(kind.value_type)
        kind = column.type
    if pa.types.is_floating(kind):  # NaN is missing data, as pandas writes it (as null)
        column = pc.if_else(pc.is_nan(column), pa.scalar(None, kind), column)
    nulls = column.null_count
    count = len(column) - nulls
    if not count:
        return ColumnStatistics(name, shown, count, nulls)
    if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind):
        numbers = column.cast(pa.float64())
        mm = pc.min_max(column).as_py()
        quantiles = pc.quantile(numbers, q=list(_QUANTILES)).to_pylist()
        span = pc.min_max(numbers).as_py()
        return ColumnStatistics(
            name,
            shown,
            count,
            nulls,
            mean=pc.mean(numbers).as_py(),
            std=pc.stddev(numbers, ddof=1).as_py(),  # None for a single value
            min=mm["min"],
            max=mm["max"],
            quantiles=dict(zip(_QUANTILES, quantiles, strict=True)),
            histogram=_histogram(numbers, span["min"], span["max"]),
        )
    if _is_text(kind):
        counts = pc.value_counts(column.drop_null()).to_pylist()
        counts.sort(key=lambda d: (-d["counts"], str(d["values"])))
        top = {str(d["values"]): d["counts"] for d in counts[:_TOP]}
        return ColumnStatistics(name, shown, count, nulls, top_values=top)
    if pa.types.is_temporal(kind):
        mm = pc.min_max(column).as_py()
        return ColumnStatistics(name, shown, count, nulls, min=mm["min"], max=mm["max"])
    return ColumnStatistics(name, shown, count, nulls)


def statistics_of(table: Any) -> TableStatistics:
    """Per-column statistics of a pandas, polars or Arrow table.

    Numbers get mean, sample std, min, max and quartiles; strings, booleans and categoricals
    their five most frequent values; dates and times their range. Nulls are counted, never
    included; NaN in a float column counts as null.
    """
    arrow = _as_arrow(table)
    index = _index_columns(arrow.schema)
    stats = {
        name: _column_statistics(name, column)
        for name, column in zip(arrow.column_names, arrow.columns, strict=True)
        if name not in index
    }
    return TableStatistics(stats, arrow.num_rows)


class StatisticsMaterializer(BaseMaterializer):
    """Reads a table artifact as :class:`TableStatistics` (count, nulls, mean, std, ...)."""

    def handle_input(self, data_type: type) -> TableStatistics:
        return statistics_of(_parquet_file(self.artifact).read())


class SchemaMaterializer(BaseMaterializer):
    """Reads a table artifact's :class:`TableSchema` from the Parquet footer, without the data."""

    def handle_input(self, data_type: type) -> TableSchema:
        pf = _parquet_file(self.artifact)
        return _schema_of(pf.schema_arrow, pf.metadata.num_rows)
