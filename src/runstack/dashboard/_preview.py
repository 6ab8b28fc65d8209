"""Bounded previews of recorded artifacts: a value, an array summary, a table's head and stats.

Only recorded artifacts are previewed, through the served stack's artifact store (which
refuses URIs outside its root); nothing from a request names a file. What is read is bounded:
a JSON value up to ``MAX_VALUE_BYTES``, an array's header and at most ``MAX_ARRAY_VALUES``
values, a table's footer, first ``HEAD_ROWS`` rows and statistics over at most
``MAX_STATS_ROWS`` rows. Which reader to use is decided by the recorded materializer's path,
compared as a string: nothing named by the record is imported, and an artifact recorded as
pickle-based is never loaded.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from runstack.artifact_stores import ArtifactStore
    from runstack.models import ArtifactRecord

MAX_VALUE_BYTES = 64 * 1024
MAX_TEXT = 2000
HEAD_ROWS = 20
MAX_STATS_ROWS = 200_000
MAX_ARRAY_VALUES = 1_000_000
_M = "runstack.materializers."
BUILTIN = _M + "_builtin.BuiltInMaterializer"
NUMPY = _M + "_numpy.NumpyMaterializer"
TABLES = {_M + "_pandas.PandasMaterializer", _M + "_arrow.ArrowMaterializer"}
TABLES.add(_M + "_polars.PolarsMaterializer")


def _short(text: str) -> str:
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 3] + "..."


def _plain(value: Any) -> Any:
    """A JSON-safe cell: numbers and strings as they are, anything else as its text."""
    if value is None or isinstance(value, (bool, int, str)):
        return _short(value) if isinstance(value, str) else value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    return _short(str(value))


def preview(record: ArtifactRecord, artifacts: ArtifactStore) -> dict[str, Any]:
    """What the dashboard shows of one artifact (``kind`` says which shape)."""
    base = {"artifact_id": record.id, "data_type": record.data_type}
    if record.storage_format == "pickle":
        return base | {
            "kind": "withheld",
            "reason": "This artifact is pickle-based: loading it runs code from its files, so "
            "it is never previewed. Read it in Python with .read() if you trust it.",
        }
    artifacts.check(record.uri, f"Artifact #{record.id}")
    reader = {BUILTIN: _value, NUMPY: _array}.get(record.materializer)
    if reader is None and record.materializer in TABLES:
        reader = _table
    if reader is None:
        return base | {
            "kind": "none",
            "reason": f"No preview for {record.data_type} (written by {record.materializer}); "
            "read it in Python with .read().",
        }
    try:
        return base | reader(record, artifacts)
    except FileNotFoundError as e:
        return base | {
            "kind": "missing",
            "reason": f"The artifact's files are missing from the artifact store ({e.filename}).",
        }
    except Exception as e:  # damaged files: say so on the page rather than fail it
        return base | {"kind": "error", "reason": f"Cannot preview it: {type(e).__name__}: {e}"}


def _value(record: ArtifactRecord, artifacts: ArtifactStore) -> dict[str, Any]:
    from runstack.materializers._builtin import loads

    sizes = dict(artifacts.files(record.uri))
    name = "data.bin" if "data.bin" in sizes else "data.json"
    size = sizes.get(name)
    if size is None:
        return {"kind": "missing", "reason": f"{name} is missing from the artifact's folder."}
    if size > MAX_VALUE_BYTES:
        return {"kind": "too_large", "size": size, "limit": MAX_VALUE_BYTES}
    with artifacts.open(record.uri, name) as f:
        data = f.read(MAX_VALUE_BYTES + 1)
    value = data if name == "data.bin" else loads(data)
    plain = value is None or isinstance(value, (bool, int, float, str))
    return {
        "kind": "value",
        "type": type(value).__name__,
        "value": _plain(value) if plain else None,
        "text": _short(repr(value)),
        "size": size,
    }


def _array(record: ArtifactRecord, artifacts: ArtifactStore) -> dict[str, Any]:
    import numpy as np

    with artifacts.open(record.uri, "array.npy") as f:
        arr = _npy(f)
    flat = arr.reshape(-1)
    out: dict[str, Any] = {
        "kind": "array",
        "shape": list(arr.shape),
        "dtype": str(arr.dtype),
        "size": int(arr.size),
        "head": [_plain(v) for v in flat[:HEAD_ROWS].tolist()],
    }
    if arr.size and np.issubdtype(arr.dtype, np.number) and not np.iscomplexobj(arr):
        sample = np.asarray(flat[:MAX_ARRAY_VALUES], dtype=np.float64)
        out["stats"] = {
            "min": _plain(float(np.nanmin(sample))),
            "max": _plain(float(np.nanmax(sample))),
            "mean": _plain(float(np.nanmean(sample))),
            "std": _plain(float(np.nanstd(sample))),
            "nan": int(np.isnan(sample).sum()),
            "over_values": int(sample.size),
        }
    return out


def _npy(f: Any) -> Any:
    """The array of an open ``.npy`` file, reading at most ``MAX_ARRAY_VALUES`` values."""
    import numpy as np
    from numpy.lib import format as npy

    major, _minor = npy.read_magic(f)
    header = npy.read_array_header_1_0 if major == 1 else npy.read_array_header_2_0
    shape, fortran, dtype = header(f)
    if dtype.hasobject:
        raise ValueError("object arrays are not previewed")
    count = min(math.prod(shape), MAX_ARRAY_VALUES)
    data = np.frombuffer(f.read(count * dtype.itemsize), dtype=dtype, count=count)
    if count == math.prod(shape):
        return data.reshape(shape, order="F" if fortran else "C")
    return data  # a prefix of a big array, flat


def _table(record: ArtifactRecord, artifacts: ArtifactStore) -> dict[str, Any]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from runstack.materializers._tabular import _index_columns, statistics_of

    with artifacts.open(record.uri, "data.parquet") as f:
        pf = pq.ParquetFile(f)
        schema = pf.schema_arrow
        index = _index_columns(schema)
        columns = [n for n in schema.names if n not in index]
        batches = []
        read = 0
        for batch in pf.iter_batches(batch_size=min(MAX_STATS_ROWS, 65_536), columns=columns):
            batches.append(batch)
            read += batch.num_rows
            if read >= MAX_STATS_ROWS:
                break
        part = pa.Table.from_batches(batches) if batches else schema.empty_table().select(columns)
        total = pf.metadata.num_rows
    head = part.slice(0, HEAD_ROWS).to_pylist()
    stats = statistics_of(part).to_dict() if part.num_rows else None
    return {
        "kind": "table",
        "num_rows": total,
        "columns": [{"name": n, "type": str(schema.field(n).type)} for n in columns],
        "head": [{k: _plain(v) for k, v in row.items()} for row in head],
        "statistics": stats,
        "statistics_over_rows": part.num_rows,
    }


def scalar(record: ArtifactRecord, artifacts: ArtifactStore, limit: int) -> Any:
    """The value of a built-in scalar artifact of at most ``limit`` bytes (a "metric")."""
    from runstack.materializers._builtin import loads

    with artifacts.open(artifacts.check(record.uri), "data.json") as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise ValueError("too long for a metric")
    value = loads(data)
    if not (value is None or isinstance(value, (bool, int, float, str))):
        raise ValueError("not a scalar")
    return _plain(value)
