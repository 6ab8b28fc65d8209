"""Read-only views of a tabular artifact: its per-column statistics and its schema.

They read the Parquet file a table materializer wrote; they never write artifacts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
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

    def __str__(self) -> str:
        lines = [f"{len(self.columns)} columns, {self.num_rows} rows"]
        lines += [f"  {c.name}: {c.type}{'' if c.nullable else ' not null'}" for c in self.columns]
        return "\n".join(lines)


@dataclass(frozen=True)
class ColumnStatistics:
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

    def __str__(self) -> str:
        lines = [f"{self.num_rows} rows"]
        for c in self.columns.values():
            parts = [f"count={c.count}", f"nulls={c.nulls}"]
            if c.mean is not None:
                parts += [f"mean={c.mean:.6g}", f"std={c.std:.6g}", f"min={c.min}", f"max={c.max}"]
            if c.top_values:
                parts.append(f"top={c.top_values}")
            lines.append(f"  {c.name} ({c.type}): " + ", ".join(parts))
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


def _schema_of(arrow_schema: Any, num_rows: int) -> TableSchema:
    cols = tuple(
        ColumnSchema(f.name, str(f.type), f.nullable)
        for f in arrow_schema
        if not f.name.startswith("__index_level_")
    )
    return TableSchema(cols, num_rows)


def statistics_of(table: Any) -> TableStatistics:
    """Statistics of a ``pyarrow.Table``."""
    import pyarrow as pa
    import pyarrow.compute as pc

    stats: dict[str, ColumnStatistics] = {}
    for name, column in zip(table.column_names, table.columns, strict=True):
        if name.startswith("__index_level_"):
            continue
        nulls = column.null_count
        count = len(column) - nulls
        kind = column.type
        if pa.types.is_dictionary(kind):
            column = column.cast(kind.value_type)
            kind = column.type
        if (pa.types.is_integer(kind) or pa.types.is_floating(kind)) and count:
            q = [0.25, 0.5, 0.75]
            quantiles = dict(zip(q, pc.quantile(column, q=q).to_pylist(), strict=True))
            mm = pc.min_max(column).as_py()
            stats[name] = ColumnStatistics(
                name,
                str(column.type),
                count,
                nulls,
                mean=pc.mean(column).as_py(),
                std=pc.stddev(column, ddof=1).as_py(),
                min=mm["min"],
                max=mm["max"],
                quantiles=quantiles,
            )
        elif (
            pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_boolean(kind)
        ) and count:
            counts = pc.value_counts(column.drop_null()).to_pylist()
            counts.sort(key=lambda d: -d["counts"])
            top = {str(d["values"]): d["counts"] for d in counts[:5]}
            stats[name] = ColumnStatistics(name, str(column.type), count, nulls, top_values=top)
        elif (pa.types.is_temporal(kind)) and count:
            mm = pc.min_max(column).as_py()
            stats[name] = ColumnStatistics(
                name, str(column.type), count, nulls, min=mm["min"], max=mm["max"]
            )
        else:
            stats[name] = ColumnStatistics(name, str(column.type), count, nulls)
    return TableStatistics(stats, table.num_rows)


class StatisticsMaterializer(BaseMaterializer):
    """Reads a table artifact as :class:`TableStatistics` (count, nulls, mean, std, ...)."""

    def handle_input(self, data_type: type) -> TableStatistics:
        return statistics_of(_parquet_file(self.artifact).read())


class SchemaMaterializer(BaseMaterializer):
    """Reads a table artifact's :class:`TableSchema` from the Parquet footer, without the data."""

    def handle_input(self, data_type: type) -> TableSchema:
        pf = _parquet_file(self.artifact)
        return _schema_of(pf.schema_arrow, pf.metadata.num_rows)
