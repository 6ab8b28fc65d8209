"""NumPy arrays as ``.npy`` files, read without pickle."""

from __future__ import annotations

from typing import Any

import numpy as np

from runstack.exceptions import MaterializerError
from runstack.materializers._base import BaseMaterializer

_FILE = "array.npy"


class NumpyMaterializer(BaseMaterializer):
    """``numpy.ndarray`` in NumPy's own ``.npy`` format (``allow_pickle=False``)."""

    ASSOCIATED_TYPES = (np.ndarray,)

    def handle_input(self, data_type: type) -> Any:
        with self.artifact.open(_FILE, "rb") as f:
            return np.load(f, allow_pickle=False)

    def handle_return(self, data: Any) -> None:
        if data.dtype.hasobject:
            raise MaterializerError(
                "NumpyMaterializer refuses arrays of dtype=object: they can only be stored with "
                "pickle, which runs code when loaded. Convert the array to a numeric or string "
                "dtype, or register a materializer for it."
            )
        with self.artifact.open(_FILE, "wb") as f:
            np.save(f, data, allow_pickle=False)
