"""PyTorch modules, tensors and tensor datasets; safetensors for weights, devices remapped.

Where an artifact is read: by default on the device it was written from when that device
exists here, else on the CPU. ``Materializer.on("cpu")`` / ``.on("cuda")`` pick one::

    model = output.read(materializer=PyTorchModuleMaterializer.on("cpu"))
"""

from __future__ import annotations

import json
import logging
from typing import Any, ClassVar

import safetensors.torch as st
import torch
from torch import nn
from torch.utils.data import TensorDataset

from runstack.exceptions import MaterializerError
from runstack.materializers._base import BaseMaterializer, import_path, type_path
from runstack.materializers._files import path_to_read, path_to_write

logger = logging.getLogger("runstack")

_META = "meta.json"
_WEIGHTS = "weights.safetensors"
_MODULE = "module.pt"
_TENSORS = "tensors.safetensors"


_VARIANTS: dict[tuple[type, str], type[_TorchMaterializer]] = {}


class _TorchMaterializer(BaseMaterializer):
    MAP_LOCATION: ClassVar[str | None] = None  # None: where it was written, if that exists here

    @classmethod
    def on(cls, device: str | torch.device) -> type[_TorchMaterializer]:
        """This materializer, reading onto ``device`` ("cpu", "cuda", "cuda:1", ...)."""
        dev = torch.device(device)
        key = (cls, str(dev))
        if key not in _VARIANTS:
            name = f"{cls.__name__}On{str(dev).replace(':', '').upper()}"
            # No ASSOCIATED_TYPES: a reading variant must not replace the default for writing.
            attrs = {"MAP_LOCATION": str(dev), "ASSOCIATED_TYPES": (), "__module__": cls.__module__}
            _VARIANTS[key] = type(name, (cls,), attrs)
        return _VARIANTS[key]

    def _meta(self) -> dict[str, Any]:
        with self.artifact.open(_META, "rb") as f:
            return dict(json.loads(f.read()))

    def _write_meta(self, meta: dict[str, Any]) -> None:
        with self.artifact.open(_META, "w") as f:
            f.write(json.dumps(meta))

    def _target(self, written_on: str) -> torch.device:
        if self.MAP_LOCATION is not None:
            dev = torch.device(self.MAP_LOCATION)
            if not _available(dev):
                raise MaterializerError(
                    f"{type(self).__name__} was asked to read {self.artifact.uri} onto {dev}, "
                    f"but this machine has no {dev.type} device. Read it with "
                    f"{type(self).__mro__[1].__name__}.on('cpu') instead."
                )
            return dev
        dev = torch.device(written_on)
        if _available(dev):
            return dev
        logger.info("artifact %s was written on %s; reading it on the CPU", self.artifact.uri, dev)
        return torch.device("cpu")


def _available(dev: torch.device) -> bool:
    if dev.type == "cpu":
        return True
    if dev.type == "cuda":
        return torch.cuda.is_available() and (dev.index or 0) < torch.cuda.device_count()
    if dev.type == "mps":
        return bool(torch.backends.mps.is_available())
    return False


def _device_of(module: nn.Module) -> str:
    for t in (*module.parameters(), *module.buffers()):
        return str(t.device)
    return "cpu"


def _check_tensor(t: torch.Tensor, what: str) -> torch.Tensor:
    if t.layout is not torch.strided:
        raise MaterializerError(
            f"PyTorch materializers store dense tensors; {what} has layout {t.layout}. "
            "Convert it with .to_dense() first."
        )
    return t.detach().contiguous()


class PyTorchTensorMaterializer(_TorchMaterializer):
    """``torch.Tensor`` (and ``nn.Parameter``) as safetensors: no pickle, any device.

    Shape, dtype, ``requires_grad`` and parameter-ness are kept; 0-d and non-contiguous
    tensors are stored as their values. Sparse tensors are refused.
    """

    ASSOCIATED_TYPES = (torch.Tensor,)

    def handle_return(self, data: Any) -> None:
        with self.artifact.open(_TENSORS, "wb") as f:
            f.write(st.save({"tensor": _check_tensor(data, "the tensor")}))
        self._write_meta(
            {
                "device": str(data.device),
                "requires_grad": bool(data.requires_grad),
                "parameter": isinstance(data, nn.Parameter),
            }
        )

    def handle_input(self, data_type: type) -> Any:
        meta = self._meta()
        with self.artifact.open(_TENSORS, "rb") as f:
            tensor = st.load(f.read())["tensor"].to(self._target(meta["device"]))
        if meta["parameter"] or (
            isinstance(data_type, type) and issubclass(data_type, nn.Parameter)
        ):
            return nn.Parameter(tensor, requires_grad=meta["requires_grad"])
        return tensor.requires_grad_(meta["requires_grad"]) if meta["requires_grad"] else tensor


class PyTorchDatasetMaterializer(_TorchMaterializer):
    """``torch.utils.data.TensorDataset`` as its tensors, in safetensors."""

    ASSOCIATED_TYPES = (TensorDataset,)

    def handle_return(self, data: Any) -> None:
        tensors: dict[str, torch.Tensor] = {}
        seen: set[int] = set()
        for i, t in enumerate(data.tensors):
            t = _check_tensor(t, f"tensor {i} of the dataset")
            if t.untyped_storage().data_ptr() in seen:  # TensorDataset(x, x): store twice
                t = t.clone()
            seen.add(t.untyped_storage().data_ptr())
            tensors[f"t{i}"] = t
        with self.artifact.open(_TENSORS, "wb") as f:
            f.write(st.save(tensors))
        device = str(data.tensors[0].device) if data.tensors else "cpu"
        self._write_meta({"count": len(tensors), "device": device})

    def handle_input(self, data_type: type) -> Any:
        meta = self._meta()
        target = self._target(meta["device"])
        with self.artifact.open(_TENSORS, "rb") as f:
            loaded = st.load(f.read())
        return TensorDataset(*(loaded[f"t{i}"].to(target) for i in range(meta["count"])))


class PyTorchModuleMaterializer(_TorchMaterializer):
    """``torch.nn.Module``: weights as safetensors plus what it takes to rebuild it.

    - A module whose class defines ``get_config()`` (returning JSON-able constructor
      arguments) is stored as that config plus its ``state_dict`` in safetensors, and rebuilt
      on read as ``cls.from_config(config)`` (or ``cls(**config)``) followed by
      ``load_state_dict``: no pickle, and the class must be importable where it is read.
    - Any other module is stored whole with ``torch.save`` (pickle), logged as a warning and
      recorded as pickle-based; reading it runs code from the file
      (``torch.load(weights_only=False)``), so read it only from a store you trust. An
      artifact not recorded as pickle-based is never unpickled, whatever its files say.

    Either way the module is loaded back when it is written, so a module that cannot be
    rebuilt (a ``get_config()`` missing an argument, a class that cannot be unpickled) fails
    the step instead of being recorded. Train/eval mode is kept. A module is read onto one
    device (see the module docstring).
    """

    ASSOCIATED_TYPES = (nn.Module,)

    def handle_return(self, data: Any) -> None:
        meta: dict[str, Any] = {
            "class": type_path(type(data)),
            "device": _device_of(data),
            "training": data.training,
        }
        config = data.get_config() if callable(getattr(data, "get_config", None)) else None
        if config is None:
            logger.warning(
                "%s has no get_config(); storing it whole with torch.save (pickle), which runs "
                "code when loaded. Define get_config() returning its constructor arguments to "
                "store only its weights (safetensors).",
                type(data).__name__,
            )
            with self.artifact.open(_MODULE, "wb") as f:
                torch.save(data, f)
            self._write_meta({**meta, "format": "pickle"})
            self.storage_format = "pickle"
            self._prove_round_trip(data)
            return
        try:
            json.dumps(config)
        except TypeError as e:
            raise MaterializerError(
                f"{type(data).__name__}.get_config() must return JSON-serializable constructor "
                f"arguments ({e}). Return plain numbers, strings, lists and dicts."
            ) from e
        with path_to_write(self.artifact, _WEIGHTS) as path:
            st.save_model(data, path)  # handles tied (shared) weights
        self._write_meta({**meta, "format": "state_dict", "config": config})
        self._prove_round_trip(data)

    def _prove_round_trip(self, data: Any) -> None:
        """Load what was just written, so a module that cannot be read back is never recorded."""
        try:
            # By the class name recorded, as a reader will: a class defined inside a function
            # writes fine and can never be rebuilt.
            self._load(object, warn=False)
        except Exception as e:
            raise MaterializerError(
                f"{type(data).__name__} was written but cannot be loaded back "
                f"({type(e).__name__}: {e}), so it is not recorded. Make its class importable "
                "(defined at module level, not in a function) and, with get_config(), return "
                "every constructor argument."
            ) from e

    def handle_input(self, data_type: type) -> Any:
        return self._load(data_type, warn=True)

    def _load(self, data_type: type, *, warn: bool) -> Any:
        meta = self._meta()
        target = self._target(meta["device"])
        if meta["format"] == "pickle":
            if warn:  # not when proving the round trip of what this very call wrote
                self.check_pickle_recorded()
            with self.artifact.open(_MODULE, "rb") as f:
                module = torch.load(f, map_location=target, weights_only=False)
            return module
        try:
            # The type recorded in the metadata store is the class when it is already loaded;
            # only otherwise is the class named in meta.json imported, and it must be a Module.
            if isinstance(data_type, type) and type_path(data_type) == meta["class"]:
                cls = data_type
            else:
                cls = import_path(meta["class"])
            if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
                raise ImportError(f"{meta['class']} is not a torch.nn.Module subclass")
        except (ImportError, AttributeError) as e:
            raise MaterializerError(
                f"Cannot import {meta['class']} to rebuild the module stored at "
                f"{self.artifact.uri}: {e}. Make the module's class importable (not defined "
                "in __main__ or inside a function) where the artifact is read."
            ) from e
        config = meta["config"]
        module = cls.from_config(config) if hasattr(cls, "from_config") else cls(**config)
        module.to(target)
        with path_to_read(self.artifact, _WEIGHTS) as path:
            try:
                missing, unexpected = st.load_model(module, path, strict=False, device=str(target))
                problem = f"missing {sorted(missing)}, unexpected {sorted(unexpected)}"
            except RuntimeError as e:  # shape mismatches
                missing, unexpected, problem = [""], [], " ".join(str(e).split())
        if missing or unexpected:
            raise MaterializerError(
                f"{meta['class']}(**{config}) does not match the weights stored at "
                f"{self.artifact.uri} ({problem}). get_config() must return every constructor "
                "argument that shapes the module."
            )
        return module.train(meta["training"])
