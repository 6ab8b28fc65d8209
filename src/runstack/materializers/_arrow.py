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
        local = self.artifact.local_path(_FILE)
        if local is not None:
            return pq.read_table(local)
        with self.artifact.open(_FILE, "rb") as f:
            return pq.read_table(f)

    def handle_return(self, data: Any) -> None:
        # store_schema keeps Arrow types Parquet lacks (durations, large strings) exact.
        local = self.artifact.local_path(_FILE)
        if local is not None:
            pq.write_table(data, local, store_schema=True)
        else:
            with self.artifact.open(_FILE, "wb") as f:
                pq.write_table(data, f, store_schema=True)
