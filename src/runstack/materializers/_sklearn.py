"""scikit-learn estimators and pipelines: skops where it can, pickle where it must."""

from __future__ import annotations

import json
import logging
import pickle
from typing import Any, ClassVar

import skops.io as sio
from sklearn.base import BaseEstimator

from runstack.exceptions import MaterializerError
from runstack.materializers._base import BaseMaterializer

logger = logging.getLogger("runstack")

_SKOPS = "model.skops"
_PICKLE = "model.pkl"
_META = "meta.json"


class SklearnMaterializer(BaseMaterializer):
    """Fitted (or unfitted) scikit-learn estimators, pipelines and meta-estimators.

    Written with `skops <https://skops.readthedocs.io>`_, whose format rebuilds objects from
    an explicit list of allowed types and never runs code from the file. Types outside
    scikit-learn, NumPy and SciPy that the file needs (a custom transformer of yours, say) are
    recorded in the artifact's ``meta.json`` when it is written and allowed when it is read;
    a file that asks for anything else is refused. Add module prefixes to
    ``TRUSTED_MODULES`` in a subclass to allow more.

    Every write is loaded back before it counts: when skops cannot serialize the object, or
    what it wrote cannot be loaded (a ``FunctionTransformer(lambda x: x * 2)``: skops stores
    functions by name), this falls back to ``pickle`` (logged as a warning, recorded as
    pickle-based in the metadata store; reading such an artifact runs code from it, like any
    pickle, so read it only from an artifact store you trust). When pickle cannot store or
    load it either, the step fails with both reasons, and nothing unreadable is recorded.
    """

    ASSOCIATED_TYPES = (BaseEstimator,)
    TRUSTED_MODULES: ClassVar[tuple[str, ...]] = ("sklearn.", "numpy.", "scipy.")

    def handle_return(self, data: Any) -> None:
        try:
            payload = sio.dumps(data)
            needs = sorted(sio.get_untrusted_types(data=payload))
            sio.loads(payload, trusted=needs)  # prove it loads back before recording it
        except Exception as e:  # skops raises assorted errors for objects it cannot walk
            logger.warning(
                "skops cannot store %s so that it loads back (%s: %s); storing it with pickle "
                "instead, which runs code when loaded.",
                type(data).__name__,
                type(e).__name__,
                e,
            )
            self._write_pickle(data, f"skops: {type(e).__name__}: {e}")
            return
        with self.artifact.open(_SKOPS, "wb") as f:
            f.write(payload)
        self._write_meta(
            {
                "format": "skops",
                "class": _path(type(data)),
                "trusted": [t for t in needs if not t.startswith(self.TRUSTED_MODULES)],
            }
        )

    def _write_pickle(self, data: Any, skops_problem: str) -> None:
        try:
            payload = pickle.dumps(data, protocol=pickle.HIGHEST_PROTOCOL)
            pickle.loads(payload)
        except Exception as e:
            raise MaterializerError(
                f"{type(data).__name__} cannot be stored so that it can be read back "
                f"({skops_problem}; pickle: {type(e).__name__}: {e}). Replace lambdas and "
                "nested functions in it (e.g. FunctionTransformer(func=...)) with functions "
                "defined at module level in an importable module."
            ) from e
        with self.artifact.open(_PICKLE, "wb") as f:
            f.write(payload)
        self._write_meta({"format": "pickle", "class": _path(type(data))})
        self.storage_format = "pickle"

    def handle_input(self, data_type: type) -> Any:
        with self.artifact.open(_META, "rb") as f:
            meta = json.loads(f.read())
        if meta["format"] == "pickle":
            self.check_pickle_recorded()
            with self.artifact.open(_PICKLE, "rb") as f:
                return pickle.load(f)  # only for objects skops refused (documented)
        with self.artifact.open(_SKOPS, "rb") as f:
            payload = f.read()
        needs = sio.get_untrusted_types(data=payload)
        allowed = set(meta.get("trusted", []))
        refused = [t for t in needs if t not in allowed and not t.startswith(self.TRUSTED_MODULES)]
        if refused:
            raise MaterializerError(
                f"The skops file at {self.artifact.uri} asks for types that were not recorded "
                f"when it was written: {', '.join(sorted(refused))}. It may have been replaced. "
                "If you trust them, read it with a subclass of SklearnMaterializer whose "
                "TRUSTED_MODULES lists their module prefixes."
            )
        return sio.loads(payload, trusted=needs)

    def _write_meta(self, meta: dict[str, Any]) -> None:
        with self.artifact.open(_META, "w") as f:
            f.write(json.dumps(meta))


def _path(t: type) -> str:
    return f"{t.__module__}.{t.__qualname__}"
