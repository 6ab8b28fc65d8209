"""pandas DataFrames and Series as Parquet (through pyarrow)."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd

from runstack.materializers._base import BaseMaterializer

_FILE = "data.parquet"
_META = "meta.json"


class PandasMaterializer(BaseMaterializer):
    """``pandas.DataFrame`` and ``pandas.Series`` as one Parquet file; the index is kept."""

    ASSOCIATED_TYPES = (pd.DataFrame, pd.Series)

    def handle_input(self, data_type: type) -> Any:
        with self.artifact.open(_META, "rb") as f:
            meta = json.loads(f.read())
        frame = self._read_frame()
        if meta["kind"] == "series":
            series = frame.iloc[:, 0]
            series.name = meta["name"]
            return series
        return frame

    def _read_frame(self) -> pd.DataFrame:
        local = self.artifact.local_path(_FILE)
        if local is not None:
            return pd.read_parquet(local, engine="pyarrow")
        with self.artifact.open(_FILE, "rb") as f:
            return pd.read_parquet(f, engine="pyarrow")

    def handle_return(self, data: Any) -> None:
        if isinstance(data, pd.Series):
            meta = {"kind": "series", "name": data.name}
            frame = data.to_frame(name="__series__" if data.name is None else str(data.name))
        else:
            meta = {"kind": "dataframe"}
            frame = data
        local = self.artifact.local_path(_FILE)
        if local is not None:
            frame.to_parquet(local, engine="pyarrow")
        else:
            with self.artifact.open(_FILE, "wb") as f:
                frame.to_parquet(f, engine="pyarrow")
        with self.artifact.open(_META, "w") as f:
            f.write(json.dumps(meta))
