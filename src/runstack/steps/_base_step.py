"""``BaseStep`` and the ``@step`` decorator: a step's definition, with no I/O."""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, overload

from runstack.exceptions import DefinitionError
from runstack.steps._options import DEFAULT_OPTIONS, ExecutionOptions
from runstack.steps._signature import StepSignature, is_config_class, parse_signature

if TYPE_CHECKING:
    from runstack.steps._config import BaseStepConfig

F = TypeVar("F", bound=Callable[..., Any])


class BaseStep:
    """A step: a function with typed inputs and outputs, run and recorded by a pipeline.

    Subclass it and define ``entrypoint``, or decorate a function with :func:`step`. Calling
    the class creates a step instance for one pipeline slot; calling the instance inside a
    pipeline function connects it to other steps' outputs.
    """

    NAME: ClassVar[str] = "BaseStep"
    ENABLE_CACHE: ClassVar[bool | None] = None
    ROLE: ClassVar[str | None] = None  # set by standard step interfaces (trainer, evaluator...)
    SIGNATURE: ClassVar[StepSignature]
    # retries, timeout, resources: ``@step(retries=2)`` or ``OPTIONS = ExecutionOptions(...)``
    OPTIONS: ClassVar[ExecutionOptions] = DEFAULT_OPTIONS

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if being_unpickled():
            return  # cloudpickle creates the class empty and fills it in afterwards
        raw = cls.__dict__.get("entrypoint")
        if raw is None:
            if not hasattr(cls, "SIGNATURE"):
                raise DefinitionError(
                    f"Step class {cls.__name__} has no entrypoint. Define "
                    "`def entrypoint(self, ...) -> ...:` with annotated inputs."
                )
            return
        if "NAME" not in cls.__dict__:
            cls.NAME = cls.__name__
        if "SIGNATURE" in cls.__dict__:  # parsed by @step, which knows the defining scope
            return
        func = raw.__func__ if isinstance(raw, staticmethod) else raw
        cls.SIGNATURE = parse_signature(func, cls.NAME, skip_self=not isinstance(raw, staticmethod))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        sig = self.SIGNATURE
        config = kwargs.pop("config", None)
        if args:
            if len(args) > 1 or not is_config_class(type(args[0])) or config is not None:
                raise DefinitionError(
                    f"Step {self.NAME!r} takes at most one positional argument, its config; "
                    f"got {len(args)} argument(s). Connect inputs inside the pipeline function."
                )
            config = args[0]
        if sig.config_class is None and (config is not None or kwargs):
            given = sorted(kwargs) or ["config"]
            raise DefinitionError(
                f"Step {self.NAME!r} has no config parameter, but was given {given}. Add a "
                "parameter annotated with a BaseStepConfig subclass to the step to accept them."
            )
        if config is not None and kwargs:
            raise DefinitionError(
                f"Step {self.NAME!r} was given both config= and {sorted(kwargs)}; use one."
            )
        if config is not None and not isinstance(config, sig.config_class):  # type: ignore[arg-type]
            raise DefinitionError(
                f"Step {self.NAME!r} expects a {sig.config_class.__name__} config, "  # type: ignore[union-attr]
                f"got {type(config).__name__}."
            )
        self._config: BaseStepConfig | None = config
        self._config_values: dict[str, Any] = dict(kwargs)
        if kwargs:
            self.resolve_config()  # reject unknown fields and bad values now, not at run time
        self._materializers: dict[str, type] = {}
        self._options = self.OPTIONS

    # -- configuration -------------------------------------------------------------------

    def resolve_config(self, overrides: Mapping[str, Any] | None = None) -> BaseStepConfig | None:
        """The config this step runs with, after ``overrides``; errors name missing fields."""
        cls = self.SIGNATURE.config_class
        if cls is None:
            if overrides:
                raise DefinitionError(
                    f"Step {self.NAME!r} has no config parameter, so parameters "
                    f"{sorted(overrides)} cannot be set for it."
                )
            return None
        if self._config is not None and not overrides:
            return self._config
        values = dict(self._config.model_dump() if self._config is not None else {})
        values.update(self._config_values)
        values.update(overrides or {})
        from pydantic import ValidationError  # a config class exists, so pydantic is loaded

        try:
            return cls(**values)
        except ValidationError as e:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or '<config>'}: {err['msg']}"
                for err in e.errors()
            )
            fields = ", ".join(
                f"{n}: {getattr(f.annotation, '__name__', f.annotation)}"
                for n, f in cls.model_fields.items()
            )
            raise DefinitionError(
                f"Invalid config for step {self.NAME!r} ({cls.__name__}): {problems}. "
                f"Its fields are {fields}; pass them as {self.NAME}(config={cls.__name__}(...)) "
                "or set them with pipeline.with_config(...)."
            ) from None

    def with_return_materializers(self, materializers: type | Mapping[str, type]) -> BaseStep:
        """Choose the materializer for one output (``{"name": Cls}``) or for all outputs."""
        from runstack.materializers import BaseMaterializer

        outputs = self.SIGNATURE.outputs
        if isinstance(materializers, type):
            materializers = dict.fromkeys(outputs, materializers)
        for name, klass in materializers.items():
            if name not in outputs:
                raise DefinitionError(
                    f"Step {self.NAME!r} has no output {name!r}; its outputs are {list(outputs)}."
                )
            if not (isinstance(klass, type) and issubclass(klass, BaseMaterializer)):
                raise DefinitionError(
                    f"Materializer for output {name!r} of step {self.NAME!r} must be a "
                    f"BaseMaterializer subclass, got {klass!r}."
                )
        self._materializers.update(materializers)
        return self

    @property
    def materializers(self) -> dict[str, type]:
        return dict(self._materializers)

    def with_options(self, **options: Any) -> BaseStep:
        """Set execution options for this instance: ``trainer().with_options(retries=2)``."""
        self._options = self._options.updated(f"Step {self.NAME!r}", **options)
        return self

    @property
    def options(self) -> ExecutionOptions:
        """How this step instance is executed: retries, timeout, resources."""
        return self._options

    @property
    def caching_requested(self) -> bool:
        """Caching for this step unless turned off; context steps only when asked for."""
        if self.ENABLE_CACHE is not None:
            return self.ENABLE_CACHE
        return self.SIGNATURE.context_param is None

    @classmethod
    def entrypoint_function(cls) -> Callable[..., Any]:
        raw = None
        for klass in cls.__mro__:
            raw = klass.__dict__.get("entrypoint")
            if raw is not None:
                break
        return raw.__func__ if isinstance(raw, staticmethod) else raw  # type: ignore[return-value]

    # -- connecting ----------------------------------------------------------------------

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from runstack.steps._connect import current_builder

        builder = current_builder()
        if builder is None:
            raise DefinitionError(
                f"Step {self.NAME!r} was called outside a pipeline. Call step instances inside "
                "a @pipeline function (or BasePipeline.connect) to connect them, then run the "
                "pipeline; to test the logic alone, call its entrypoint function directly."
            )
        return builder.connect(self, args, kwargs)

    def __repr__(self) -> str:
        return f"<step {self.NAME}>"


def being_unpickled() -> bool:
    """Whether the class being created is cloudpickle's empty skeleton of a step class.

    cloudpickle rebuilds a class defined in ``__main__`` or a notebook by creating it with an
    empty body and setting its attributes afterwards; checks made at class creation must wait.
    """
    frame = sys._getframe(2)
    for _ in range(4):
        if frame is None:
            return False
        if frame.f_code.co_name == "_make_skeleton_class" and "cloudpickle" in (
            frame.f_code.co_filename
        ):
            return True
        frame = frame.f_back  # type: ignore[assignment]
    return False


@overload
def step(func: F) -> type[BaseStep]: ...
@overload
def step(
    func: None = None,
    *,
    name: str | None = None,
    enable_cache: bool | None = None,
    retries: int = 0,
    retry_delay: float = 0.0,
    retry_backoff: float = 1.0,
    timeout: float | None = None,
    resources: Mapping[str, Any] | None = None,
) -> Callable[[F], type[BaseStep]]: ...


def step(
    func: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    enable_cache: bool | None = None,
    **options: Any,
) -> Any:
    """Turn a function into a step class: ``@step`` or ``@step(name=..., enable_cache=...)``.

    Execution options (``retries``, ``retry_delay``, ``retry_backoff``, ``timeout``,
    ``resources``) are described by :class:`ExecutionOptions`. Calling the result creates a
    step instance: ``my_step()`` or ``my_step(config=...)``.
    """
    return decorate(BaseStep, func, name, enable_cache, sys._getframe(1).f_locals, options)


def decorate(
    base: type[BaseStep],
    func: Callable[..., Any] | None,
    name: str | None,
    enable_cache: bool | None,
    caller_locals: Mapping[str, Any],
    options: Mapping[str, Any] | None = None,
) -> Any:
    """The decorator machinery behind ``@step`` and the role decorators (``@trainer``...)."""
    # Annotations may name things local to the function that defines the step.
    localns = dict(caller_locals)
    label = base.ROLE or "step"
    where = f"@{label}({name or getattr(func, '__name__', '...')})"
    execution = ExecutionOptions.make(where, **options) if options else base.OPTIONS

    def wrap(f: Callable[..., Any]) -> type[BaseStep]:
        if not inspect.isfunction(f):
            raise DefinitionError(f"@{label} decorates functions, got {f!r}.")
        step_name = name or f.__name__
        attrs = {
            "entrypoint": staticmethod(f),
            "SIGNATURE": parse_signature(f, step_name, localns=localns),
            "NAME": step_name,
            "ENABLE_CACHE": enable_cache,
            "OPTIONS": execution,
            "__module__": f.__module__,
            "__qualname__": f.__qualname__,
            "__doc__": f.__doc__,
        }
        return type(f.__name__, (base,), attrs)

    return wrap(func) if func is not None else wrap
