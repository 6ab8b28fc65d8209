"""Previews of artifacts for display, read from a bounded part of their files.

Display never calls a materializer: it is chosen by the *recorded* materializer name, and only
formats that are plain data are opened (JSON values, ``.npy`` arrays, Parquet tables), through
the artifact store, reading at most ``LIMIT`` bytes of each (the Parquet footer and first rows
of a bigger table). Anything else (pickle-based torch modules and scikit-learn fallbacks,
Keras files, user materializers) is described from its record only and loaded by nobody
until the user calls ``read()``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from runstack.post_execution import ArtifactView

LIMIT = 16 * 1024 * 1024  # bytes of an array file loaded for its summary
STATS_LIMIT = 4 * 1024 * 1024  # bytes of a Parquet file scanned for statistics
VALUE_LIMIT = 64 * 1024  # bytes of a JSON value shown
HEAD_ROWS, HEAD_COLUMNS = 10, 20

_M = "runstack.materializers."
BUILTIN = _M + "_builtin.BuiltInMaterializer"
TABLES = {
    _M + "_pandas.PandasMaterializer",
    _M + "_arrow.ArrowMaterializer",
    _M + "_polars.PolarsMaterializer",
}
NUMPY = _M + "_numpy.NumpyMaterializer"


@dataclass
class Preview:
    """What display shows of one artifact; ``kind`` says which fields are set."""

    kind: str  # "value", "bytes", "table", "array", "not loaded", "unavailable"
    note: str = ""
    value: Any = None
    size: int | None = None
    columns: list[tuple[str, str]] = field(default_factory=list)  # (name, type)
    rows: list[list[Any]] = field(default_factory=list)
    num_rows: int | None = None
    statistics: Any = None  # TableStatistics, when the table is small enough to scan
    summary: dict[str, Any] = field(default_factory=dict)  # arrays: shape, dtype, min...


def preview(artifact: ArtifactView) -> Preview:
    """A bounded preview of ``artifact``; never raises for a missing or unreadable file."""
    from runstack.post_execution._display import artifact_files, storage_format

    mat = artifact.materializer
    if mat not in TABLES and mat not in (BUILTIN, NUMPY):
        pickled = storage_format(artifact) == "pickle"
        how = " (pickle-based: reading it runs code from its files)" if pickled else ""
        return Preview(
            "not loaded",
            f"Written by {mat.rsplit('.', 1)[-1]}{how}; not loaded for display. "
            "Call .read() to load it.",
        )
    try:
        store = artifact_files(artifact)
        sizes = dict(store.files(artifact.uri))
        if mat == BUILTIN:
            return _builtin(store, artifact.uri, sizes)
        if mat == NUMPY:
            return _array(store, artifact.uri, sizes)
        return _table(store, artifact.uri, sizes)
    except ImportError as e:
        return Preview(
            "unavailable",
            f"Previewing it needs {e.name}: pip install "
            "'runstack[pandas]' (tables) or 'runstack[numpy]' (arrays).",
        )
    except Exception as e:  # a display shows what it can; read() reports errors in full
        return Preview("unavailable", f"Cannot preview it: {type(e).__name__}: {e}")


def _builtin(store: Any, uri: str, sizes: dict[str, int]) -> Preview:
    from runstack.materializers._builtin import loads

    if "data.bin" in sizes:
        return Preview("bytes", f"{sizes['data.bin']:,} bytes", size=sizes["data.bin"])
    size = sizes.get("data.json")
    if size is None:
        raise FileNotFoundError(f"{uri}/data.json")
    if size > VALUE_LIMIT:
        return Preview("value", f"A JSON value of {size:,} bytes, too big to show here.", size=size)
    with store.open(uri, "data.json") as f:
        return Preview("value", value=loads(f.read()), size=size)


def scalar(artifact: ArtifactView) -> int | float | bool | str | None:
    """The artifact's value if it is a number, a bool or a short string stored as JSON, else
    None: what the metric picture and runs tables show (``metrics``)."""
    if artifact.materializer != BUILTIN:
        return None
    p = preview(artifact)
    if p.kind != "value" or (p.size or 0) > 4096:
        return None
    v = p.value
    if isinstance(v, bool | int | float) or (isinstance(v, str) and len(v) <= 80):
        return v
    return None


def _array(store: Any, uri: str, sizes: dict[str, int]) -> Preview:
    import numpy as np

    size = sizes["array.npy"]
    with store.open(uri, "array.npy") as f:
        version = np.lib.format.read_magic(f)
        read_header = (
            np.lib.format.read_array_header_1_0
            if version == (1, 0)
            else np.lib.format.read_array_header_2_0
        )
        shape, fortran, dtype = read_header(f)
        summary: dict[str, Any] = {
            "shape": tuple(shape),
            "dtype": str(dtype),
            "order": "F" if fortran else "C",
        }
        if dtype.hasobject:
            return Preview(
                "array", "An object array; not loaded for display.", size=size, summary=summary
            )
        if size > LIMIT:
            return Preview(
                "array",
                f"{size:,} bytes; only its header is read for display.",
                size=size,
                summary=summary,
            )
        f.seek(0)
        data = np.load(f, allow_pickle=False)
    if data.size and (np.issubdtype(data.dtype, np.number) or data.dtype == np.bool_):
        flat = data.astype(np.float64, copy=False).ravel()
        finite = flat[np.isfinite(flat)]
        summary["nan"] = int(np.isnan(flat).sum())
        if finite.size:
            summary.update(
                min=float(finite.min()),
                max=float(finite.max()),
                mean=float(finite.mean()),
                std=float(finite.std()),
            )
    summary["first values"] = data.ravel()[:8].tolist()
    return Preview("array", size=size, summary=summary)


def _table(store: Any, uri: str, sizes: dict[str, int]) -> Preview:
    import pyarrow.parquet as pq

    from runstack.materializers._tabular import _index_columns, statistics_of

    size = sizes["data.parquet"]
    with store.open(uri, "data.parquet") as f:
        pf = pq.ParquetFile(f)
        schema = pf.schema_arrow
        index = _index_columns(schema)
        names = [n for n in schema.names if n not in index]
        shown = names[:HEAD_COLUMNS]
        batch = next(pf.iter_batches(batch_size=HEAD_ROWS, columns=shown), None)
        rows = [] if batch is None else [list(r.values()) for r in batch.to_pylist()]
        stats = statistics_of(pf.read(columns=names)) if size <= STATS_LIMIT else None
        num_rows = pf.metadata.num_rows
    note = "" if stats is not None else f"{size:,} bytes: statistics are computed on read()."
    if len(names) > HEAD_COLUMNS:
        note += f" Showing {HEAD_COLUMNS} of {len(names)} columns."
    return Preview(
        "table",
        note.strip(),
        size=size,
        columns=[(n, str(schema.field(n).type)) for n in names],
        rows=[[_cell(v) for v in row] for row in rows],
        num_rows=num_rows,
        statistics=stats,
    )


def _cell(v: Any) -> Any:
    if isinstance(v, float) and math.isnan(v):
        return "NaN"
    if isinstance(v, bytes | list | dict):
        text = json.dumps(v, default=str) if not isinstance(v, bytes) else repr(v)
        return text if len(text) <= 60 else text[:59] + "…"
    return v
