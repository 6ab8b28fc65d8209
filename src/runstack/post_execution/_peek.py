"""Bounded, pickle-free looks into stored artifacts, for diffs, summaries and previews.

Only formats that runstack's own materializers write, and that read without running code,
are opened here: the built-in JSON values, NumPy ``.npy`` files (``allow_pickle=False``) and
Parquet tables. Which reader applies is decided by the materializer *recorded* for the
artifact, matched exactly, so an artifact recorded as pickle-based (or written by any other
materializer) is never opened. Every read checks the artifact's size first: above the limit
the caller is told so (:class:`TooLarge`) instead of loading gigabytes to describe them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from runstack.exceptions import RunstackError

if TYPE_CHECKING:
    from runstack.artifact_stores import ArtifactStore
    from runstack.materializers._tabular import TableSchema, TableStatistics
    from runstack.post_execution._views import ArtifactView

_M = "runstack.materializers."
BUILTIN = _M + "_builtin.BuiltInMaterializer"
NUMPY = _M + "_numpy.NumpyMaterializer"
TABLES = frozenset(
    {
        _M + "_pandas.PandasMaterializer",
        _M + "_arrow.ArrowMaterializer",
        _M + "_polars.PolarsMaterializer",
    }
)
SCALAR_TYPES = frozenset({"builtins.int", "builtins.float", "builtins.bool", "builtins.str"})

# Defaults; callers may pass their own limit.
READ_LIMIT = 64 * 1024 * 1024  # bytes of an array or table read to compute statistics
VALUE_LIMIT = 1024 * 1024  # bytes of a built-in JSON value read to compare it
SCALAR_LIMIT = 4096  # a metric's JSON file is a few bytes; more means it is no scalar
SHORT_TEXT = 200  # longer strings are not "metrics"

_JSON_FILE = "data.json"
_NPY_FILE = "array.npy"
_PARQUET = "data.parquet"


class TooLarge(RunstackError):
    """An artifact is bigger than the limit set for reading it here."""


def kind_of(view: ArtifactView) -> str:
    """How an artifact can be looked into: ``value`` (built-in JSON), ``bytes``, ``array``,
    ``table``, or ``opaque`` (pickle-based, or a format not read here)."""
    if view.storage_format == "pickle":
        return "opaque"
    mat = view.materializer
    if mat == BUILTIN:
        return "bytes" if view.data_type in ("builtins.bytes", "builtins.bytearray") else "value"
    if mat == NUMPY:
        return "array"
    if mat in TABLES:
        return "table"
    return "opaque"


def _store(view: ArtifactView) -> ArtifactStore:
    """The artifact store the view reads through, with the artifact's URI checked against it."""
    from runstack.post_execution._views import artifact_store_of

    store = artifact_store_of(view._artifacts)
    store.check(view.uri, f"Artifact #{view.id}")
    return store


def _inline(view: ArtifactView) -> bytes | None:
    """The bytes of an artifact kept inline with its record (its one file, ``data.json``),
    else None. Records without the field (stores before inline values) hold none."""
    return getattr(view._rec, "inline", None)  # in a scan's readable record too


def size_of(view: ArtifactView, name: str | None = None) -> int:
    """Bytes the artifact's files take (of file ``name`` only, when given)."""
    inline = _inline(view)
    if inline is not None:
        return len(inline) if name in (None, _JSON_FILE) else 0
    files = _store(view).files(view.uri)
    return sum(size for rel, size in files if name is None or rel == name)


def _read_bytes(view: ArtifactView, name: str, limit: int) -> bytes:
    inline = _inline(view)
    if inline is not None:
        if len(inline) > limit:
            raise TooLarge(f"{len(inline)} bytes, over the {limit}-byte limit for reading it here")
        return inline
    # The size from the open file, not a listing of the folder: runs tables read hundreds.
    with _store(view).open(view.uri, name, "rb") as f:
        size = f.seek(0, 2)
        if size > limit:
            raise TooLarge(f"{size} bytes, over the {limit}-byte limit for reading it here")
        f.seek(0)
        data: bytes = f.read(limit + 1)
    return data


def read_value(view: ArtifactView, limit: int = VALUE_LIMIT) -> Any:
    """The value of a built-in JSON artifact (``kind_of == "value"``); TooLarge above limit."""
    from runstack.materializers._builtin import loads

    if kind_of(view) != "value":
        raise ValueError(f"artifact {view.name!r} is not a built-in JSON value")
    return loads(_read_bytes(view, _JSON_FILE, limit))


_NOT_SCALAR = object()


def scalar_of(view: ArtifactView) -> Any:
    """The value of a scalar output (int, float, bool or a short string stored by the built-in
    materializer), or ``NOT_SCALAR``. Reads a few bytes at most; never another format."""
    if view.data_type not in SCALAR_TYPES or kind_of(view) != "value":
        return _NOT_SCALAR
    try:
        value = read_value(view, SCALAR_LIMIT)
    except (TooLarge, OSError, ValueError, RunstackError):
        return _NOT_SCALAR
    if isinstance(value, str) and len(value) > SHORT_TEXT:
        return _NOT_SCALAR
    if not isinstance(value, (int, float, bool, str)):
        return _NOT_SCALAR
    return value


NOT_SCALAR = _NOT_SCALAR


@dataclass(frozen=True)
class ArraySummary:
    """Shape, dtype and (when the array was small enough to read) summary statistics."""

    shape: tuple[int, ...]
    dtype: str
    stats: dict[str, float | int | None] | None  # None: not read (too large, not numeric)
    note: str | None = None


def _finite(x: Any) -> float | int | None:
    value = x.item() if hasattr(x, "item") else x
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else value
    return value


def array_summary(view: ArtifactView, limit: int = READ_LIMIT) -> ArraySummary:
    """Shape and dtype from the ``.npy`` header; min, max, mean, std and NaN count (numeric
    arrays up to ``limit`` bytes) from the data. Never unpickles (``allow_pickle=False``)."""
    import numpy as np

    if kind_of(view) != "array":
        raise ValueError(f"artifact {view.name!r} is not a NumPy array")
    store = _store(view)
    with store.open(view.uri, _NPY_FILE, "rb") as f:  # the header only, not the data
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, _fortran, dtype = np.lib.format.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, _fortran, dtype = np.lib.format.read_array_header_2_0(f)
        else:
            raise ValueError(f"unknown .npy format version {version}")
    shown = str(dtype)
    if not (np.issubdtype(dtype, np.number) or np.issubdtype(dtype, np.bool_)):
        return ArraySummary(tuple(shape), shown, None, "no statistics for this dtype")
    if np.issubdtype(dtype, np.complexfloating):
        return ArraySummary(tuple(shape), shown, None, "no statistics for complex numbers")
    size = size_of(view, _NPY_FILE)
    if size > limit:
        return ArraySummary(
            tuple(shape), shown, None, f"too large to read ({size} bytes > {limit})"
        )
    with store.open(view.uri, _NPY_FILE, "rb") as f:
        data = np.load(f, allow_pickle=False)
    stats: dict[str, float | int | None] = {"size": int(data.size)}
    if data.size:
        values = data.astype(np.float64) if data.dtype == np.bool_ else data
        nans = int(np.isnan(values).sum()) if np.issubdtype(values.dtype, np.floating) else 0
        stats["nans"] = nans
        if nans < data.size:
            stats.update(
                min=_finite(np.nanmin(values)),
                max=_finite(np.nanmax(values)),
                mean=_finite(np.nanmean(values, dtype=np.float64)),
                std=_finite(np.nanstd(values, dtype=np.float64)),
            )
    return ArraySummary(tuple(int(n) for n in shape), shown, stats)


def table_schema(view: ArtifactView) -> TableSchema:
    """The table's schema and row count, from the Parquet footer only."""
    from runstack.materializers._tabular import SchemaMaterializer

    return view.read(materializer=SchemaMaterializer)


def table_statistics(view: ArtifactView, limit: int = READ_LIMIT) -> TableStatistics:
    """Per-column statistics (the ``StatisticsMaterializer``'s), for tables up to ``limit``
    bytes of Parquet; TooLarge above."""
    from runstack.materializers._tabular import StatisticsMaterializer

    if kind_of(view) != "table":
        raise ValueError(f"artifact {view.name!r} is not a table")
    size = size_of(view, _PARQUET)
    if size > limit:
        raise TooLarge(f"{size} bytes of Parquet, over the {limit}-byte limit for statistics")
    return view.read(materializer=StatisticsMaterializer)


def table_head(
    view: ArtifactView, rows: int = 10, columns: int = 20
) -> tuple[list[tuple[str, str]], list[list[Any]]]:
    """``(every column's (name, Arrow type), the first rows of the first columns)``: the
    Parquet footer and one small batch, whatever the table's size (index columns left out)."""
    import pyarrow.parquet as pq

    from runstack.materializers._tabular import _index_columns

    if kind_of(view) != "table":
        raise ValueError(f"artifact {view.name!r} is not a table")
    with _store(view).open(view.uri, _PARQUET, "rb") as f:
        pf = pq.ParquetFile(f)
        schema = pf.schema_arrow
        index = _index_columns(schema)
        names = [n for n in schema.names if n not in index]
        batch = next(pf.iter_batches(batch_size=rows, columns=names[:columns]), None)
        head = [] if batch is None else [list(r.values()) for r in batch.to_pylist()[:rows]]
    return [(n, str(schema.field(n).type)) for n in names], head
