"""NumPy arrays as ``.npy`` files, read without pickle; big local arrays are memory-mapped."""

from __future__ import annotations

import os
from typing import Any, ClassVar

import numpy as np

from runstack.exceptions import MaterializerError
from runstack.materializers._base import BaseMaterializer

_FILE = "array.npy"


class NumpyMaterializer(BaseMaterializer):
    """``numpy.ndarray`` in NumPy's own ``.npy`` format (``allow_pickle=False``).

    Shape, dtype and memory order (C or Fortran) survive the round trip; 0-d and
    non-contiguous arrays are written as their values. An array of at least
    ``MMAP_THRESHOLD`` bytes on a local artifact store is read memory-mapped copy-on-write
    (``np.memmap``, a subclass of ``ndarray``): only the pages a step touches are loaded, and
    writing to the array changes the step's copy, never the stored artifact.
    """

    ASSOCIATED_TYPES = (np.ndarray,)
    MMAP_THRESHOLD: ClassVar[int] = 16 * 1024 * 1024

    def handle_input(self, data_type: type) -> Any:
        local = self.artifact.local_path(_FILE)
        if local is not None and os.path.getsize(local) >= self.MMAP_THRESHOLD:
            return np.load(local, mmap_mode="c", allow_pickle=False)
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
            np.save(f, np.asarray(data), allow_pickle=False)
