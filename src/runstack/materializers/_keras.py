"""Keras 3 models in the native ``.keras`` format."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from typing import Any

# Keras 3 needs a backend at import and defaults to TensorFlow, which runstack[keras] does not
# install: when KERAS_BACKEND is unset and TensorFlow is absent but PyTorch is there, use
# "torch" rather than fail. Set KERAS_BACKEND yourself (before keras is imported) to choose.
if (
    "keras" not in sys.modules
    and "KERAS_BACKEND" not in os.environ
    and importlib.util.find_spec("tensorflow") is None
    and importlib.util.find_spec("torch") is not None
):
    os.environ["KERAS_BACKEND"] = "torch"

import keras

from runstack.exceptions import MaterializerError
from runstack.materializers._base import BaseMaterializer
from runstack.materializers._files import path_to_read, path_to_write

_FILE = "model.keras"
_META = "meta.json"


class KerasModelMaterializer(BaseMaterializer):
    """``keras.Model`` (Sequential, functional or subclassed) as a ``.keras`` file.

    The file holds the architecture as JSON config, the weights and the compile state
    (optimizer, loss, metrics). It is read with ``safe_mode=True``, which refuses to rebuild
    ``Lambda`` layers from their bytecode; custom layers and models must be registered with
    ``@keras.saving.register_keras_serializable()`` and importable where the model is read.
    The backend that wrote the model is recorded; the file itself is backend-independent.
    The file is loaded back (the same way) when it is written, so a model that could never
    be read (a ``Lambda`` layer, an unregistered custom layer) fails the step instead.

    Keras needs ``KERAS_BACKEND`` (``torch``, ``jax`` or ``tensorflow``) set before it is
    imported; when it is unset and TensorFlow is not installed, runstack sets ``torch``.
    """

    ASSOCIATED_TYPES = (keras.Model,)

    def handle_return(self, data: Any) -> None:
        with path_to_write(self.artifact, _FILE) as path:
            data.save(path)
            try:
                keras.saving.load_model(path, safe_mode=True)
            except Exception as e:
                raise MaterializerError(
                    f"{type(data).__name__} was saved but cannot be loaded back "
                    f"({type(e).__name__}: {e}), so it is not recorded. Replace Lambda layers "
                    "with layer classes, and register custom layers and models with "
                    "@keras.saving.register_keras_serializable() in an importable module."
                ) from e
        with self.artifact.open(_META, "w") as f:
            f.write(json.dumps({"backend": keras.backend.backend(), "keras": keras.__version__}))

    def handle_input(self, data_type: type) -> Any:
        with path_to_read(self.artifact, _FILE) as path:
            return keras.saving.load_model(path, safe_mode=True)
