"""The materializer contract and the registry that picks one by type."""

from __future__ import annotations

import contextlib
import importlib
import io
import logging
import posixpath
from collections.abc import Iterator
from typing import IO, TYPE_CHECKING, Any, ClassVar

from runstack.exceptions import MaterializerError
from runstack.models import INLINE_FILE

if TYPE_CHECKING:
    from runstack.models import ArtifactRecord

logger = logging.getLogger("runstack")
_PICKLE_WARNED: set[str] = set()


class Artifact:
    """Where one artifact lives: a URI and the fsspec filesystem that serves it.

    An artifact kept inline in the metadata store is served from memory instead: ``files``
    maps its file names to their bytes (read), or collects what a materializer writes.
    """

    __slots__ = ("_fs", "files", "uri")

    def __init__(self, uri: str, fs: Any = None, files: dict[str, bytes] | None = None) -> None:
        self.uri = uri
        self._fs = fs
        self.files = files

    @classmethod
    def of(cls, record: ArtifactRecord, fs: Any = None) -> Artifact:
        """The artifact a record describes: inline (from memory) or files at its URI."""
        if record.inline is not None:
            return cls(record.uri, fs, {INLINE_FILE: record.inline})
        return cls(record.uri, fs)

    @property
    def fs(self) -> Any:
        if self._fs is None:
            from fsspec.core import url_to_fs

            self._fs, _ = url_to_fs(self.uri)
        return self._fs

    def path(self, name: str) -> str:
        return posixpath.join(self.uri, name)

    def local_path(self, name: str) -> str | None:
        """A plain OS path for ``name`` when the artifact is on the local disk, else None."""
        if self.files is not None or ("://" in self.uri and not self.uri.startswith("file://")):
            return None
        return self.path(name).removeprefix("file://")

    def open(self, name: str, mode: str = "rb") -> IO[Any]:
        if self.files is not None:
            return self._open_in_memory(name, mode)
        local = self.local_path(name)
        if local is not None:  # skip fsspec's wrapper on the hot path for local stores
            return open(local, mode)
        return self.fs.open(self.path(name), mode)

    @contextlib.contextmanager
    def file(self, name: str, mode: str = "rb") -> Iterator[Any]:
        """For libraries that take "a path or a file": a plain path on a local store (they
        read and write those fastest), else an open remote file, closed after the block."""
        local = self.local_path(name)
        if local is not None:
            yield local
            return
        with self.open(name, mode) as f:
            yield f

    def _open_in_memory(self, name: str, mode: str) -> IO[Any]:
        files = self.files
        assert files is not None
        if "r" in mode:
            if name not in files:
                raise FileNotFoundError(2, "No such file in an inline artifact", self.path(name))
            data = files[name]
            return io.BytesIO(data) if "b" in mode else io.StringIO(data.decode("utf-8"))
        return _Collected(files, name, binary="b" in mode)

    def __repr__(self) -> str:
        return f"Artifact(uri={self.uri!r})"


class _Collected(io.BytesIO):
    """A file written to an in-memory artifact: its bytes land in ``files`` when closed."""

    def __init__(self, files: dict[str, bytes], name: str, binary: bool) -> None:
        super().__init__()
        self._files, self._name, self._binary = files, name, binary

    def write(self, data: Any) -> int:
        return super().write(data if self._binary else data.encode("utf-8"))

    def close(self) -> None:
        if not self.closed:
            self._files[self._name] = self.getvalue()
        super().close()


class BaseMaterializer:
    """Writes values of its ``ASSOCIATED_TYPES`` to an artifact URI and reads them back.

    Subclass it to teach runstack a new type; the subclass registers itself::

        class MyModelMaterializer(BaseMaterializer):
            ASSOCIATED_TYPES = (MyModel,)

            def handle_input(self, data_type):
                with self.artifact.open("model.json", "r") as f:
                    return MyModel.from_json(f.read())

            def handle_return(self, data):
                with self.artifact.open("model.json", "w") as f:
                    f.write(data.to_json())

    A materializer handles its associated types and their subclasses. The one that wrote an
    artifact is recorded with it, so reading uses the same one unless another is asked for.

    A format whose reading runs code from the files (pickle, ``torch.save``) must be declared:
    ``handle_return`` sets ``self.storage_format = "pickle"``, which is recorded with the
    artifact, and ``handle_input`` calls :meth:`check_pickle_recorded` before unpickling, so
    files replaced after the write cannot make ``read()`` run code the record did not allow.
    """

    ASSOCIATED_TYPES: ClassVar[tuple[type, ...]] = ()
    #: Up to this many bytes, an artifact that is one file named ``INLINE_FILE`` is kept in
    #: the metadata store with its record instead of in the artifact store (0: never). Such a
    #: materializer's ``handle_return`` writes through ``self.artifact.open`` only.
    INLINE_LIMIT: ClassVar[int] = 0
    #: Set by ``handle_return`` to ``"pickle"`` when reading the files back runs code.
    storage_format: str | None = None
    #: The ``storage_format`` recorded with the artifact being read (set by the reader).
    recorded_format: str | None = None

    def __init__(self, artifact: Any) -> None:
        self.artifact = artifact if isinstance(artifact, Artifact) else Artifact(artifact.uri)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        registry.remember(cls)
        for t in cls.ASSOCIATED_TYPES:
            if not isinstance(t, type):
                raise MaterializerError(
                    f"{cls.__name__}.ASSOCIATED_TYPES must hold classes, got {t!r}."
                )
            registry.register(t, cls)

    def check_pickle_recorded(self) -> None:
        """Call before unpickling: refuse unless the artifact was recorded as pickle-based when
        it was written, and warn (once per artifact) that reading it runs code from its files."""
        uri = self.artifact.uri
        if self.recorded_format != "pickle":
            raise MaterializerError(
                f"The files at {uri} say they are a pickle, but the metadata store recorded "
                f"artifact {uri} as {self.recorded_format or 'not pickle-based'} when it was "
                "written, so it is not unpickled: unpickling runs code from the files, which "
                "may have been replaced. If you trust them, re-run the step that wrote it "
                "(with caching off) to write and record it again."
            )
        if uri not in _PICKLE_WARNED:
            _PICKLE_WARNED.add(uri)
            logger.warning(
                "Reading %s: a pickle-based artifact; unpickling runs code from its files. "
                "Read it only from an artifact store you trust.",
                uri,
            )

    def handle_input(self, data_type: type) -> Any:
        """Read the artifact and return it as ``data_type``."""
        raise NotImplementedError(f"{type(self).__name__} cannot read artifacts.")

    def handle_return(self, data: Any) -> None:
        """Write ``data`` to the artifact."""
        raise NotImplementedError(f"{type(self).__name__} cannot write artifacts.")


# Built-in materializers for optional libraries, imported only when such a type is seen.
_LAZY: dict[str, str] = {
    "numpy.ndarray": "runstack.materializers._numpy:NumpyMaterializer",
    "pandas.DataFrame": "runstack.materializers._pandas:PandasMaterializer",
    "pandas.Series": "runstack.materializers._pandas:PandasMaterializer",
    "pandas.core.frame.DataFrame": "runstack.materializers._pandas:PandasMaterializer",
    "pandas.core.series.Series": "runstack.materializers._pandas:PandasMaterializer",
    "pyarrow.lib.Table": "runstack.materializers._arrow:ArrowMaterializer",
    "polars.dataframe.frame.DataFrame": "runstack.materializers._polars:PolarsMaterializer",
    "sklearn.base.BaseEstimator": "runstack.materializers._sklearn:SklearnMaterializer",
    "torch.Tensor": "runstack.materializers._torch:PyTorchTensorMaterializer",
    "torch.nn.modules.module.Module": "runstack.materializers._torch:PyTorchModuleMaterializer",
    "torch.utils.data.dataset.TensorDataset": (
        "runstack.materializers._torch:PyTorchDatasetMaterializer"
    ),
    "keras.src.models.model.Model": "runstack.materializers._keras:KerasModelMaterializer",
}


def type_path(t: type) -> str:
    """The importable dotted path of a class (``builtins.int``, ``pandas.core.frame.DataFrame``)."""
    return f"{t.__module__}.{t.__qualname__}"


def import_path(path: str) -> Any:
    """Import ``module.attr`` or ``module:attr``; the inverse of :func:`type_path`."""
    if ":" in path:
        module, _, attr = path.partition(":")
    else:
        module, _, attr = path.rpartition(".")
    try:
        obj: Any = importlib.import_module(module)
    except ImportError:
        # Nested class paths (module.Outer.Inner): walk back until the module imports.
        parts = path.replace(":", ".").split(".")
        for i in range(len(parts) - 1, 0, -1):
            try:
                obj = importlib.import_module(".".join(parts[:i]))
            except ImportError:
                continue
            for attr_name in parts[i:]:
                obj = getattr(obj, attr_name)
            return obj
        raise
    for attr_name in attr.split("."):
        obj = getattr(obj, attr_name)
    return obj


class MaterializerRegistry:
    """Maps types to materializer classes; a subclass is served by its nearest registered base."""

    def __init__(self) -> None:
        self._by_type: dict[type, type[BaseMaterializer]] = {}
        # Every materializer class defined in this process, by its dotted path: what a
        # recorded materializer name resolves to without importing anything.
        self._by_path: dict[str, type[BaseMaterializer]] = {}

    def remember(self, materializer: type[BaseMaterializer]) -> None:
        """Note a materializer class by its dotted path (every subclass, on definition)."""
        self._by_path[type_path(materializer)] = materializer

    def by_path(self, path: str) -> type[BaseMaterializer] | None:
        """The materializer class defined in this process under ``path``, if any."""
        return self._by_path.get(path.replace(":", "."))

    def register(self, data_type: type, materializer: type[BaseMaterializer]) -> None:
        # Later registrations win, so a user's materializer replaces a built-in for its type.
        self._by_type[data_type] = materializer

    def find(self, data_type: type) -> type[BaseMaterializer] | None:
        for klass in getattr(data_type, "__mro__", (data_type,)):
            found = self._by_type.get(klass)
            if found is not None:
                return found
            lazy = _LAZY.get(type_path(klass))
            if lazy is not None:
                import_path(lazy)  # importing registers it for its associated types
                found = self._by_type.get(klass)
                if found is not None:
                    return found
        return None

    def get(self, data_type: type) -> type[BaseMaterializer]:
        found = self.find(data_type)
        if found is None:
            raise MaterializerError(
                f"No materializer is registered for type {type_path(data_type)}. "
                "Write one by subclassing runstack.materializers.BaseMaterializer with "
                f"ASSOCIATED_TYPES = ({data_type.__name__},), or pass one for this output with "
                "step.with_return_materializers({'<output name>': YourMaterializer})."
            )
        return found


registry = MaterializerRegistry()
