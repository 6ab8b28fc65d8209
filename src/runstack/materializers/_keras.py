"""Keras 3 models in the native ``.keras`` format."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from typing import Any

# Reading a model in a fresh process: Keras defaults to TensorFlow; when only PyTorch is
# installed, use it rather than fail. Set KERAS_BACKEND yourself to choose.
if (
    "keras" not in sys.modules
    and "KERAS_BACKEND" not in os.environ
    and importlib.util.find_spec("tensorflow") is None
    and importlib.util.find_spec("torch") is not None
):
    os.environ["KERAS_BACKEND"] = "torch"

import keras

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
    """

    ASSOCIATED_TYPES = (keras.Model,)

    def handle_return(self, data: Any) -> None:
        with path_to_write(self.artifact, _FILE) as path:
            data.save(path)
        with self.artifact.open(_META, "w") as f:
            f.write(json.dumps({"backend": keras.backend.backend(), "keras": keras.__version__}))

    def handle_input(self, data_type: type) -> Any:
        with path_to_read(self.artifact, _FILE) as path:
            return keras.saving.load_model(path, safe_mode=True)
