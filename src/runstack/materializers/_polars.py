"""polars DataFrames as Parquet."""

from __future__ import annotations

from typing import Any

import polars as pl

from runstack.materializers._base import BaseMaterializer

_FILE = "data.parquet"


class PolarsMaterializer(BaseMaterializer):
    """``polars.DataFrame`` as one Parquet file, written and read by polars itself
    (categoricals, enums, datetimes with time zones and nested types round-trip)."""

    ASSOCIATED_TYPES = (pl.DataFrame,)

    def handle_input(self, data_type: type) -> Any:
        local = self.artifact.local_path(_FILE)
        if local is not None:
            return pl.read_parquet(local)
        with self.artifact.open(_FILE, "rb") as f:
            return pl.read_parquet(f)

    def handle_return(self, data: Any) -> None:
        local = self.artifact.local_path(_FILE)
        if local is not None:
            data.write_parquet(local)
        else:
            with self.artifact.open(_FILE, "wb") as f:
                data.write_parquet(f)
