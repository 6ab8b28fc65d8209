"""Reads a step function's signature into a :class:`StepSignature`, rejecting what cannot run."""

from __future__ import annotations

import inspect
import keyword
import sys
import types
import typing
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from runstack.exceptions import DefinitionError
from runstack.steps._context import StepContext
from runstack.steps._output import Output

if TYPE_CHECKING:
    from runstack.steps._config import BaseStepConfig

DEFAULT_OUTPUT = "output"
_CONFIG_MODULE = "runstack.steps._config"


def is_config_class(value: object) -> bool:
    """Whether ``value`` is a ``BaseStepConfig`` subclass, without importing pydantic.

    Until the config module is imported no class can derive from ``BaseStepConfig``, so
    defining steps without a config never loads pydantic (``runstack.steps`` exports the
    class lazily).
    """
    module = sys.modules.get(_CONFIG_MODULE)
    return (
        module is not None and isinstance(value, type) and issubclass(value, module.BaseStepConfig)
    )


@dataclass(frozen=True)
class StepSignature:
    """What a step takes and returns, in declaration order."""

    inputs: dict[str, Any]
    outputs: dict[str, Any]
    config_param: str | None = None
    config_class: type[BaseStepConfig] | None = None
    context_param: str | None = None


def parse_signature(
    func: Any, step_name: str, *, skip_self: bool = False, localns: dict[str, Any] | None = None
) -> StepSignature:
    where = f"step {step_name!r}"
    try:
        sig = inspect.signature(func, eval_str=True, locals=localns)
    except NameError as e:
        raise DefinitionError(
            f"Cannot resolve an annotation of {where}: {e}. String annotations (e.g. under "
            "`from __future__ import annotations`) are evaluated in the module's globals and "
            "the scope the step is defined in; import the names they use there."
        ) from e
    params = list(sig.parameters.values())
    if skip_self and params:
        params = params[1:]

    inputs: dict[str, Any] = {}
    config_param = context_param = None
    config_class = None
    for p in params:
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            star = "*" if p.kind is p.VAR_POSITIONAL else "**"
            raise DefinitionError(
                f"{where} takes {star}{p.name}; steps need a fixed set of named, annotated "
                "inputs so they can be connected and recorded. List each input explicitly."
            )
        ann = p.annotation
        if ann is inspect.Parameter.empty:
            raise DefinitionError(
                f"Input {p.name!r} of {where} has no type annotation. Annotate every input "
                f"(e.g. `{p.name}: int`) so runstack can pick a materializer to read it."
            )
        if is_config_class(ann):
            if config_param is not None:
                raise DefinitionError(
                    f"{where} takes two configs ({config_param!r} and {p.name!r}); "
                    "merge them into one BaseStepConfig subclass."
                )
            config_param, config_class = p.name, ann
        elif isinstance(ann, type) and issubclass(ann, StepContext):
            if context_param is not None:
                raise DefinitionError(
                    f"{where} takes two StepContext parameters ({context_param!r} and "
                    f"{p.name!r}); one is enough."
                )
            context_param = p.name
        else:
            if p.default is not inspect.Parameter.empty:
                raise DefinitionError(
                    f"Input {p.name!r} of {where} has a default value; inputs come from other "
                    "steps' outputs. Put defaults on a BaseStepConfig field instead."
                )
            inputs[p.name] = ann

    outputs = _parse_outputs(sig.return_annotation, where)
    clash = set(outputs) & ({config_param, context_param} - {None})
    if clash:
        raise DefinitionError(f"{where} uses {sorted(clash)} both as a parameter and an output.")
    return StepSignature(inputs, outputs, config_param, config_class, context_param)


def _parse_outputs(ann: Any, where: str) -> dict[str, Any]:
    if ann is inspect.Signature.empty or ann is None or ann is type(None):
        return {}
    if isinstance(ann, Output):
        outputs = dict(ann.items)
        for name in outputs:
            if not name.isidentifier() or keyword.iskeyword(name):
                raise DefinitionError(f"Output name {name!r} of {where} is not an identifier.")
        return outputs
    return {DEFAULT_OUTPUT: ann}


def _origin_class(declared: Any) -> Any:
    """The class to check an instance against, or None when it cannot be checked."""
    if declared is Any or declared is object:
        return None
    if isinstance(declared, type) and not isinstance(declared, types.GenericAlias):
        return declared
    origin = typing.get_origin(declared)
    if origin in (typing.Union, types.UnionType):
        members = [_origin_class(a) for a in typing.get_args(declared)]
        if any(m is None for m in members):
            return None
        return tuple(members)
    if isinstance(origin, type):
        return origin
    return None


def matches_type(value: Any, declared: Any) -> bool:
    """Whether ``value`` fits the declared annotation (containers checked shallowly).

    NumPy scalars fit the built-in they stand for: ``np.int64`` an ``int``, ``np.float32``
    (or any NumPy integer) a ``float``, ``np.bool_`` a ``bool``; :func:`coerce_output` then
    stores them as that built-in.
    """
    klass = _origin_class(declared)
    if klass is None:
        return True
    if klass is float and isinstance(value, int) and not isinstance(value, bool):
        return True  # PEP 484 numeric tower: an int is acceptable where a float is declared
    if klass in _NUMPY_KINDS and _numpy_kind(value) in _NUMPY_KINDS[klass]:
        return True
    return isinstance(value, klass)


# Which kinds of NumPy scalar stand for each built-in (the numeric tower, as for int/float).
_NUMPY_KINDS: dict[type, tuple[str, ...]] = {
    int: ("integer",),
    float: ("integer", "floating"),
    bool: ("bool",),
}


def _numpy_kind(value: Any) -> str | None:
    """The kind ("integer", "floating", "bool") of a NumPy scalar, without importing NumPy."""
    if type(value).__module__ != "numpy" or not hasattr(value, "dtype"):
        return None
    return {"i": "integer", "u": "integer", "f": "floating", "b": "bool"}.get(value.dtype.kind)


def coerce_output(value: Any, declared: Any) -> Any:
    """``value`` as it is stored for the declared annotation: a NumPy scalar returned for
    ``int``, ``float`` or ``bool`` becomes that built-in (``np.int64(3)`` -> ``3``), so it is
    stored as JSON and reads back as the declared type; anything else is returned unchanged."""
    klass = _origin_class(declared)
    if klass in _NUMPY_KINDS and _numpy_kind(value) is not None:
        return klass(value.item())
    return value


def concrete_class(declared: Any) -> type | None:
    """The single class a declaration names (``list[int]`` -> list), or None if it is open."""
    klass = _origin_class(declared)
    return klass if isinstance(klass, type) else None


def type_name(declared: Any) -> str:
    return getattr(declared, "__qualname__", None) or str(declared)
