"""Materializers write step outputs to the artifact store and read them back, chosen by type.

Built-ins cover Python values (JSON), NumPy arrays (``.npy``) and pandas objects (Parquet).
Materializers for optional libraries are imported on first use.
"""

from __future__ import annotations

from typing import Any

from runstack.materializers._base import Artifact, BaseMaterializer, registry
from runstack.materializers._builtin import BuiltInMaterializer

__all__ = [
    "Artifact",
    "BaseMaterializer",
    "BuiltInMaterializer",
    "NumpyMaterializer",
    "PandasMaterializer",
    "SchemaMaterializer",
    "StatisticsMaterializer",
    "registry",
]

_LAZY_NAMES = {
    "NumpyMaterializer": ("runstack.materializers._numpy", "numpy"),
    "PandasMaterializer": ("runstack.materializers._pandas", "pandas"),
    "StatisticsMaterializer": ("runstack.materializers._tabular", "pandas"),
    "SchemaMaterializer": ("runstack.materializers._tabular", "pandas"),
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY_NAMES:
        raise AttributeError(f"module 'runstack.materializers' has no attribute {name!r}")
    import importlib

    module, extra = _LAZY_NAMES[name]
    try:
        return getattr(importlib.import_module(module), name)
    except ImportError as e:
        raise ImportError(
            f"{name} needs an optional dependency ({e.name}): pip install 'runstack[{extra}]'"
        ) from e
