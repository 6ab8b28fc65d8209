"""Standard step interfaces: importer, splitter, trainer, evaluator.

Each is a thin specialisation of ``@step`` / ``BaseStep`` that records the step's role with
every execution (``StepView.role``) and checks, when the step is defined, that its signature
fits the role::

    @trainer
    def train(dataset: TensorDataset) -> nn.Module: ...

    class Train(BaseTrainerStep):
        def entrypoint(self, dataset: TensorDataset) -> nn.Module: ...
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar, overload

from runstack.exceptions import DefinitionError
from runstack.steps._base_step import BaseStep, being_unpickled, decorate
from runstack.steps._signature import StepSignature

F = TypeVar("F", bound=Callable[..., Any])
S = TypeVar("S", bound=BaseStep)


class _RoleStep(BaseStep):
    """A step base with a role; concrete subclasses define ``entrypoint``."""

    ROLE: ClassVar[str | None] = None
    # (min inputs, max inputs or None, min outputs, what the role expects, in words)
    _SHAPE: ClassVar[tuple[int, int | None, int, str]] = (0, None, 0, "")
    SIGNATURE = None  # type: ignore[assignment]  # abstract until an entrypoint is defined

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("_ROLE_BASE") or being_unpickled():
            return
        if cls.SIGNATURE is None:
            raise DefinitionError(
                f"Step class {cls.__name__} has no entrypoint. Define "
                "`def entrypoint(self, ...) -> ...:` with annotated inputs."
            )
        _check_shape(cls, cls.SIGNATURE)


def _check_shape(cls: type[_RoleStep], sig: StepSignature) -> None:
    min_in, max_in, min_out, expects = cls._SHAPE
    n_in, n_out = len(sig.inputs), len(sig.outputs)
    if n_in < min_in or (max_in is not None and n_in > max_in) or n_out < min_out:
        raise DefinitionError(
            f"{cls.ROLE.capitalize() if cls.ROLE else 'Step'} {cls.NAME!r} takes {n_in} "
            f"input(s) and returns {n_out} output(s), but a {cls.ROLE} {expects}. Change its "
            f"signature, or define it with @step if it is not a {cls.ROLE}."
        )


class BaseImporterStep(_RoleStep):
    """Brings data into a pipeline: no inputs from other steps, at least one output."""

    _ROLE_BASE = True
    ROLE = "importer"
    _SHAPE = (0, 0, 1, "takes no inputs from other steps (only a config) and returns data")


class BaseSplitterStep(_RoleStep):
    """Splits data: at least one input and at least two outputs (``-> Output(train=..., ...)``)."""

    _ROLE_BASE = True
    ROLE = "splitter"
    _SHAPE = (1, None, 2, "takes data and returns at least two parts, e.g. Output(train=, test=)")


class BaseTrainerStep(_RoleStep):
    """Fits a model: at least one input (the data) and at least one output (the model)."""

    _ROLE_BASE = True
    ROLE = "trainer"
    _SHAPE = (1, None, 1, "takes training data and returns a model")


class BaseEvaluatorStep(_RoleStep):
    """Scores a model: at least one input (model, data) and at least one output (metrics)."""

    _ROLE_BASE = True
    ROLE = "evaluator"
    _SHAPE = (1, None, 1, "takes a model and data and returns metrics")


def _decorate(
    base: type[S], func: Any, name: str | None, enable_cache: bool | None, caller: Any
) -> Any:
    return decorate(base, func, name, enable_cache, caller.f_locals)


@overload
def importer(func: F) -> type[BaseImporterStep]: ...
@overload
def importer(
    func: None = None, *, name: str | None = None, enable_cache: bool | None = None
) -> Callable[[F], type[BaseImporterStep]]: ...
def importer(func: Any = None, *, name: str | None = None, enable_cache: bool | None = None) -> Any:
    """``@step`` for a step that brings data in (no inputs); its role is ``"importer"``."""
    return _decorate(BaseImporterStep, func, name, enable_cache, sys._getframe(1))


@overload
def splitter(func: F) -> type[BaseSplitterStep]: ...
@overload
def splitter(
    func: None = None, *, name: str | None = None, enable_cache: bool | None = None
) -> Callable[[F], type[BaseSplitterStep]]: ...
def splitter(func: Any = None, *, name: str | None = None, enable_cache: bool | None = None) -> Any:
    """``@step`` for a step that splits data (two or more outputs); its role is ``"splitter"``."""
    return _decorate(BaseSplitterStep, func, name, enable_cache, sys._getframe(1))


@overload
def trainer(func: F) -> type[BaseTrainerStep]: ...
@overload
def trainer(
    func: None = None, *, name: str | None = None, enable_cache: bool | None = None
) -> Callable[[F], type[BaseTrainerStep]]: ...
def trainer(func: Any = None, *, name: str | None = None, enable_cache: bool | None = None) -> Any:
    """``@step`` for a step that fits a model; its role is ``"trainer"``."""
    return _decorate(BaseTrainerStep, func, name, enable_cache, sys._getframe(1))


@overload
def evaluator(func: F) -> type[BaseEvaluatorStep]: ...
@overload
def evaluator(
    func: None = None, *, name: str | None = None, enable_cache: bool | None = None
) -> Callable[[F], type[BaseEvaluatorStep]]: ...
def evaluator(
    func: Any = None, *, name: str | None = None, enable_cache: bool | None = None
) -> Any:
    """``@step`` for a step that scores a model; its role is ``"evaluator"``."""
    return _decorate(BaseEvaluatorStep, func, name, enable_cache, sys._getframe(1))
