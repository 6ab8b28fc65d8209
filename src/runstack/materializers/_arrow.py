"""Arrow tables as Parquet."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from runstack.materializers._base import BaseMaterializer

_FILE = "data.parquet"


class ArrowMaterializer(BaseMaterializer):
    """``pyarrow.Table`` as one Parquet file; schema (including dictionary columns, timestamps
    with time zones and the table's metadata) round-trips as written."""

    ASSOCIATED_TYPES = (pa.Table,)

    def handle_input(self, data_type: type) -> Any:
        with self.artifact.file(_FILE, "rb") as source:
            return pq.read_table(source)

    def handle_return(self, data: Any) -> None:
        # store_schema keeps Arrow types Parquet lacks (durations, large strings) exact.
        with self.artifact.file(_FILE, "wb") as target:
            pq.write_table(data, target, store_schema=True)
