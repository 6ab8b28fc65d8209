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
        with self.artifact.file(_FILE, "rb") as source:
            return pl.read_parquet(source)

    def handle_return(self, data: Any) -> None:
        with self.artifact.file(_FILE, "wb") as target:
            data.write_parquet(target)
