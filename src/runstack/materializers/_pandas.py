"""pandas DataFrames and Series as Parquet (through pyarrow)."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd

from runstack.exceptions import MaterializerError
from runstack.materializers._base import BaseMaterializer

_FILE = "data.parquet"
_META = "meta.json"


class PandasMaterializer(BaseMaterializer):
    """``pandas.DataFrame`` and ``pandas.Series`` as one Parquet file; the index is kept.

    Dtypes pandas records in the Parquet metadata come back as written: categoricals (with
    their categories and order), timezone-aware datetimes, nullable integers and strings.
    Column names that are not strings (``0, 1, 2`` after ``DataFrame(array)``) are stored as
    strings and restored on read. The file is a plain Parquet table, so
    ``StatisticsMaterializer`` and ``SchemaMaterializer`` read it too.
    """

    ASSOCIATED_TYPES = (pd.DataFrame, pd.Series)

    def handle_input(self, data_type: type) -> Any:
        with self.artifact.open(_META, "rb") as f:
            meta = json.loads(f.read())
        frame = self._read_frame()
        if "columns" in meta:
            frame.columns = pd.Index(meta["columns"])
        if meta["kind"] == "series":
            series = frame.iloc[:, 0]
            series.name = meta["name"]
            return series
        return frame

    def _read_frame(self) -> pd.DataFrame:
        with self.artifact.file(_FILE, "rb") as source:
            return pd.read_parquet(source, engine="pyarrow")

    def handle_return(self, data: Any) -> None:
        meta: dict[str, Any]
        if isinstance(data, pd.Series):
            meta = {"kind": "series", "name": _json_name(data.name, "Series name")}
            frame = data.to_frame(name="__series__" if data.name is None else str(data.name))
        else:
            meta = {"kind": "dataframe"}
            frame = data
            if not isinstance(frame.columns, pd.MultiIndex) and not all(
                isinstance(c, str) for c in frame.columns
            ):
                meta["columns"] = [_json_name(c, "column name") for c in frame.columns]
                frame = frame.set_axis([str(c) for c in frame.columns], axis=1)
        if isinstance(frame.columns, pd.Index) and frame.columns.has_duplicates:
            dupes = sorted({str(c) for c in frame.columns[frame.columns.duplicated()]})
            raise MaterializerError(
                f"PandasMaterializer cannot store a DataFrame with duplicate column names "
                f"({', '.join(dupes)}): Parquet needs unique names. Rename them first, "
                "e.g. df.columns = [...]."
            )
        with self.artifact.file(_FILE, "wb") as target:
            frame.to_parquet(target, engine="pyarrow")
        with self.artifact.open(_META, "w") as f:
            f.write(json.dumps(meta))


def _json_name(name: Any, what: str) -> Any:
    if hasattr(name, "item") and hasattr(name, "dtype"):  # a NumPy scalar
        name = name.item()
    if name is None or isinstance(name, (str, int, float, bool)):
        return name
    raise MaterializerError(
        f"PandasMaterializer stores a {what} that is a str, int, float or bool; got "
        f"{type(name).__name__} {name!r}. Rename it to one of those before returning it."
    )
