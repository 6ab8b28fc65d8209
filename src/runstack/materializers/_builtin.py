"""Python built-in values as JSON (readable on disk) and ``bytes`` as a raw file. No pickle."""

from __future__ import annotations

import base64
import json
from typing import Any

from runstack.exceptions import MaterializerError
from runstack.materializers._base import INLINE_FILE, BaseMaterializer

_TAG = "__runstack_type__"
_JSON_FILE = INLINE_FILE
_BYTES_FILE = "data.bin"


def _encode(value: Any) -> Any:
    """Turn a value into JSON, tagging what plain JSON would change (tuples, non-str keys...)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, list):
        return [_encode(v) for v in value]
    if isinstance(value, tuple):
        return {_TAG: "tuple", "items": [_encode(v) for v in value]}
    if isinstance(value, dict):
        if all(isinstance(k, str) for k in value) and _TAG not in value:
            return {k: _encode(v) for k, v in value.items()}
        return {_TAG: "dict", "items": [[_encode(k), _encode(v)] for k, v in value.items()]}
    if isinstance(value, (bytes, bytearray)):
        return {_TAG: "bytes", "b64": base64.b64encode(value).decode("ascii")}
    if isinstance(value, (set, frozenset)):
        return {_TAG: type(value).__name__, "items": [_encode(v) for v in value]}
    raise MaterializerError(
        f"The built-in materializer stores lists, tuples, dicts and sets of str, int, float, "
        f"bool, bytes and None; it cannot store a {type(value).__module__}."
        f"{type(value).__qualname__} inside a container. Register a materializer for that type "
        "or convert it to one of these first."
    )


def _decode(value: Any) -> Any:
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if isinstance(value, dict):
        tag = value.get(_TAG)
        if tag is None:
            return {k: _decode(v) for k, v in value.items()}
        if tag == "tuple":
            return tuple(_decode(v) for v in value["items"])
        if tag == "dict":
            return {_hashable(_decode(k)): _decode(v) for k, v in value["items"]}
        if tag == "bytes":
            return base64.b64decode(value["b64"])
        if tag in ("set", "frozenset"):
            items = (_hashable(_decode(v)) for v in value["items"])
            return set(items) if tag == "set" else frozenset(items)
        raise MaterializerError(f"Unknown tag {tag!r} in a built-in JSON artifact.")
    return value


def _hashable(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


# What json.dumps(value, separators=(",", ":")) writes; made once, not on every call.
_dumps = json.JSONEncoder(separators=(",", ":"), allow_nan=True).encode


def dumps(value: Any) -> bytes:
    return _dumps(_encode(value)).encode()


_scan_once = json.JSONDecoder().scan_once  # type: ignore[attr-defined]  # json.loads, less checks


def loads(data: bytes) -> Any:
    return value_of(data, None)


def value_of(data: bytes, data_type: Any) -> Any:
    """The value of a JSON artifact's bytes, as ``handle_input(data_type)`` returns it (views
    call this directly for a value kept inline: a history scan reads one per run)."""
    # Decoded first: json.loads(bytes) sniffs the encoding, and we always write UTF-8.
    text = data.decode("utf-8")
    # ``dumps`` writes no whitespace: one scan that ends at the end is what json.loads finds
    # (a history scan reads one value per run); anything else takes json.loads' own path,
    # errors included.
    try:
        value, end = _scan_once(text, 0)
    except StopIteration:
        end = -1
    if end != len(text):
        value = json.loads(text)
    if isinstance(value, (list, dict)):  # a scalar has nothing to decode: no call
        value = _decode(value)
        # The list test first: comparing types for ``in`` costs ~30 ns each.
        if isinstance(value, list) and data_type in (tuple, set, frozenset):
            return data_type(value)
    return value


class BuiltInMaterializer(BaseMaterializer):
    """Python values: int, float, bool, str, bytes, list, dict, tuple, set, frozenset, None."""

    ASSOCIATED_TYPES = (int, float, bool, str, bytes, list, dict, tuple, set, frozenset, type(None))
    # Small JSON values live with their record: reading one back (a history scan reads one per
    # run) then costs no file open. Larger ones, and bytes, are files.
    INLINE_LIMIT = 4096

    def handle_input(self, data_type: type) -> Any:
        if data_type is bytes:
            with self.artifact.open(_BYTES_FILE, "rb") as f:
                return f.read()
        with self.artifact.open(_JSON_FILE, "rb") as f:
            return value_of(f.read(), data_type)

    def handle_return(self, data: Any) -> None:
        if isinstance(data, (bytes, bytearray)):
            with self.artifact.open(_BYTES_FILE, "wb") as f:
                f.write(data)
            return
        payload = dumps(data)
        with self.artifact.open(_JSON_FILE, "wb") as f:
            f.write(payload)
