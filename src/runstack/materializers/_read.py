"""Reading a recorded artifact back through a materializer, with errors that say what to do.

The ``materializer`` and ``data_type`` of an artifact are strings in the metadata store, and
importing a module runs its code, so a recorded name is never simply imported:

- **Materializer.** A name resolves, without importing anything, to a materializer class
  already defined in this process (every ``BaseMaterializer`` subclass is noted by its dotted
  path when it is defined). Otherwise its module is imported only when it is a runstack module
  (the built-in materializers, imported lazily) or is listed in ``RUNSTACK_MATERIALIZER_MODULES``
  (comma-separated module names you trust). Whatever it resolves to must be a
  ``BaseMaterializer`` subclass. Anything else is refused before any import: import the module
  that defines your materializer before reading, pass ``read(materializer=...)``, or list the
  module in that variable (the CLI's only way).
- **Data type.** It is only a hint passed to ``handle_input`` (the materializer reads what it
  wrote), so it is never imported: it resolves to a built-in or to a class of a module that is
  already imported (typically by the materializer, e.g. pandas), and otherwise to ``object``.
"""

from __future__ import annotations

import builtins
import functools
import importlib
import os
import sys
from typing import Any

from runstack.exceptions import ArtifactNotFoundError, MaterializerError, RunstackError
from runstack.materializers._base import Artifact, BaseMaterializer, registry, type_path
from runstack.models import ArtifactRecord

MODULES_VARIABLE = "RUNSTACK_MATERIALIZER_MODULES"

# The extra that each built-in materializer module needs (pyproject's optional dependencies).
_EXTRAS = {
    "runstack.materializers._numpy": "numpy",
    "runstack.materializers._pandas": "pandas",
    "runstack.materializers._tabular": "pandas",
    "runstack.materializers._arrow": "arrow",
    "runstack.materializers._polars": "polars",
    "runstack.materializers._sklearn": "sklearn",
    "runstack.materializers._torch": "torch",
    "runstack.materializers._keras": "keras",
}


def _split(path: str) -> tuple[str, str]:
    if ":" in path:
        module, _, attr = path.partition(":")
    else:
        module, _, attr = path.rpartition(".")
    return module, attr


def _trusted_module(module: str) -> bool:
    if module == "runstack" or module.startswith("runstack."):
        return True
    listed = os.environ.get(MODULES_VARIABLE, "")
    return module in {m.strip() for m in listed.split(",") if m.strip()}


def load_materializer(path: str) -> type[BaseMaterializer]:
    """The materializer class a recorded dotted path names, under the rule in the module
    docstring; a clear :class:`MaterializerError` when it is refused or cannot be loaded."""
    known = registry.by_path(path)
    if known is not None:
        return known
    module, attr = _split(path)
    if not module or not attr:
        raise MaterializerError(f"{path!r} is not a dotted path to a materializer class.")
    if not _trusted_module(module):
        raise MaterializerError(
            f"The artifact was written by materializer {path}, which is not defined in this "
            f"process, and module {module!r} is not imported to find it: importing a module "
            "named in the metadata store would run its code. Import the module that defines "
            f"it first (import {module}), pass read(materializer={attr}), or list the module "
            f"in {MODULES_VARIABLE} (comma-separated) to allow it."
        )
    try:
        obj: Any = importlib.import_module(module)
    except ImportError as e:
        extra = _EXTRAS.get(module)
        if extra is not None:
            raise MaterializerError(
                f"The artifact was written by {attr}, which needs an optional dependency that "
                f"is not installed here ({e.name or e}): pip install 'runstack[{extra}]'"
            ) from e
        raise MaterializerError(
            f"Cannot import module {module!r} of materializer {path}: {e}. Install or restore "
            "that code, or re-run the step that wrote the artifact."
        ) from e
    for name in attr.split("."):
        obj = getattr(obj, name, None)
    if not (isinstance(obj, type) and issubclass(obj, BaseMaterializer)):
        raise MaterializerError(
            f"{path} is not a materializer class (a BaseMaterializer subclass) in module "
            f"{module!r}; the record may have been edited, or the class renamed. Pass "
            "read(materializer=...) to choose one."
        )
    return obj


_BUILTIN_TYPES = {f"builtins.{k}": v for k, v in vars(builtins).items() if isinstance(v, type)}


def load_data_type(path: str) -> type:
    """The class a recorded data type names, without importing anything (see the module
    docstring); ``object`` when it is not already loaded here or is not a class."""
    found = _BUILTIN_TYPES.get(path)  # most values are built-ins: no parsing of the path
    if found is not None:
        return found
    module, attr = _split(path)
    obj: Any = builtins if module == "builtins" else sys.modules.get(module)
    for name in attr.split(".") if obj is not None else ():
        obj = getattr(obj, name, None)
    return obj if isinstance(obj, type) else object


def check_materializer(value: Any, what: str = "materializer") -> type[BaseMaterializer]:
    """``value`` if it is a materializer class, else a TypeError that shows the expected form."""
    if isinstance(value, type) and issubclass(value, BaseMaterializer):
        return value
    shown = f"{type(value).__name__} {value!r}" if not isinstance(value, type) else repr(value)
    raise TypeError(
        f"{what} must be a materializer class (a subclass of runstack.materializers."
        f"BaseMaterializer, e.g. runstack.materializers.PandasMaterializer), not {shown}."
    )


@functools.lru_cache(maxsize=1024)
def load_path(path: str) -> Any:
    """A recorded materializer path (checked, see the module docstring) or data type path
    (never imported; ``object`` if not loaded); prefer :func:`load_materializer` and
    :func:`load_data_type`, which say which one is meant."""
    if path.startswith("builtins."):
        return load_data_type(path)
    try:
        return load_materializer(path)
    except MaterializerError:
        found = load_data_type(path)
        if found is object:
            raise
        return found


def read_artifact(
    art: ArtifactRecord, materializer: type[BaseMaterializer], data_type: Any, fs: Any = None
) -> Any:
    """Read one recorded artifact through ``fs`` (the artifact store's filesystem, which the
    caller has checked the URI against); a missing or broken file is a clear error, and so is
    a materializer other than the one that wrote it that cannot read it."""
    check_materializer(materializer)
    try:
        reader = materializer(Artifact.of(art, fs))
        reader.recorded_format = art.storage_format
        return reader.handle_input(data_type)
    except RunstackError:
        raise
    except Exception as e:
        writer = registry.by_path(art.materializer)
        if type_path(materializer) == art.materializer or (
            writer is not None and issubclass(materializer, writer)
        ):
            raise _read_error(art, materializer, data_type, e) from e
        # Another materializer than the writer: its failure says nothing about the files.
        raise MaterializerError(
            f"{art.label} at {art.uri} was written by {art.materializer} (as "
            f"{art.data_type}); {materializer.__name__} cannot read it ({type(e).__name__}: "
            f"{e}). Read it with the materializer that wrote it: leave materializer= out, or "
            "pass one that reads that format."
        ) from e


def _read_error(
    art: ArtifactRecord, materializer: type[BaseMaterializer], data_type: Any, e: Exception
) -> RunstackError:
    if isinstance(e, FileNotFoundError):
        return ArtifactNotFoundError(
            f"{art.label} at {art.uri} is missing from the artifact store "
            f"({e.filename or e}). It was deleted or moved after it was recorded; re-run the "
            "step that produced it (with caching off) to write it again."
        )
    return MaterializerError(
        f"{materializer.__name__} could not read {art.label.lower()} at {art.uri} as "
        f"{getattr(data_type, '__name__', data_type)}: {type(e).__name__}: {e}. The file may "
        "be corrupted, or the materializer does not handle this type."
    )
