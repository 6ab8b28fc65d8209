"""Materializers write step outputs to the artifact store and read them back, chosen by type.

Built-ins cover Python values (JSON), NumPy arrays (``.npy``), pandas, Arrow and polars tables
(Parquet), scikit-learn estimators (skops), PyTorch modules and tensors (safetensors) and Keras
models (``.keras``). Materializers for optional libraries are imported on first use; each needs
its extra (``pip install 'runstack[torch]'``).
"""

from __future__ import annotations

from typing import Any

from runstack.materializers._base import Artifact, BaseMaterializer, registry
from runstack.materializers._builtin import BuiltInMaterializer

__all__ = [
    "ArrowMaterializer",
    "Artifact",
    "BaseMaterializer",
    "BuiltInMaterializer",
    "KerasModelMaterializer",
    "NumpyMaterializer",
    "PandasMaterializer",
    "PolarsMaterializer",
    "PyTorchDatasetMaterializer",
    "PyTorchModuleMaterializer",
    "PyTorchTensorMaterializer",
    "SchemaMaterializer",
    "SklearnMaterializer",
    "StatisticsMaterializer",
    "registry",
]

_LAZY_NAMES = {
    "NumpyMaterializer": ("runstack.materializers._numpy", "numpy"),
    "PandasMaterializer": ("runstack.materializers._pandas", "pandas"),
    "StatisticsMaterializer": ("runstack.materializers._tabular", "pandas"),
    "SchemaMaterializer": ("runstack.materializers._tabular", "pandas"),
    "ArrowMaterializer": ("runstack.materializers._arrow", "arrow"),
    "PolarsMaterializer": ("runstack.materializers._polars", "polars"),
    "SklearnMaterializer": ("runstack.materializers._sklearn", "sklearn"),
    "PyTorchModuleMaterializer": ("runstack.materializers._torch", "torch"),
    "PyTorchTensorMaterializer": ("runstack.materializers._torch", "torch"),
    "PyTorchDatasetMaterializer": ("runstack.materializers._torch", "torch"),
    "KerasModelMaterializer": ("runstack.materializers._keras", "keras"),
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
