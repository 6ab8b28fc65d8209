"""``BasePipeline`` and the ``@pipeline`` decorator: steps in slots, connected into a graph."""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, overload

from runstack.exceptions import ConfigError, DefinitionError
from runstack.pipelines._graph import GraphBuilder, PipelineGraph, bind_arguments
from runstack.steps import BaseStep, ExecutionOptions
from runstack.steps._connect import reset_builder, set_builder
from runstack.steps._options import OPTION_NAMES

if TYPE_CHECKING:
    from runstack.post_execution import RunView


class BasePipeline:
    """A pipeline: named step slots and a ``connect`` method that wires their outputs.

    ::

        class TrainingPipeline(BasePipeline):
            def connect(self, importer, trainer):
                trainer(importer())

        TrainingPipeline(importer=load_data(), trainer=train()).run()
    """

    NAME: ClassVar[str] = "BasePipeline"
    ENABLE_CACHE: ClassVar[bool] = True
    STEP_SLOTS: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        raw = cls.__dict__.get("connect")
        if raw is None:
            return
        if "NAME" not in cls.__dict__:
            cls.NAME = cls.__name__
        params = list(
            inspect.signature(
                raw.__func__ if isinstance(raw, staticmethod) else raw
            ).parameters.values()
        )
        if not isinstance(raw, staticmethod):
            params = params[1:]
        for p in params:
            if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                raise DefinitionError(
                    f"Pipeline {cls.NAME!r} takes *{p.name}; name each step slot as a parameter."
                )
        cls.STEP_SLOTS = tuple(p.name for p in params)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        slots = list(self.STEP_SLOTS)
        where = f"Pipeline {self.NAME!r}"
        steps = bind_arguments(
            slots,
            args,
            kwargs,
            owner=where,
            noun="step slot",
            hint=f"Pass an instance for each, e.g. "
            f"{self.NAME}({', '.join(f'{s}=...' for s in slots)}).",
        )
        seen: dict[int, str] = {}
        for slot in slots:
            value = steps[slot]
            if isinstance(value, type) and issubclass(value, BaseStep):
                raise DefinitionError(
                    f"{where}: slot {slot!r} got the step class {value.NAME}; pass an instance, "
                    f"{value.NAME}()."
                )
            if not isinstance(value, BaseStep):
                raise DefinitionError(
                    f"{where}: slot {slot!r} must be a step instance, got {type(value).__name__}."
                )
            if id(value) in seen:
                raise DefinitionError(
                    f"{where}: the same step instance is in slots {seen[id(value)]!r} and "
                    f"{slot!r}. Create one instance per slot: {value.NAME}(), {value.NAME}()."
                )
            seen[id(value)] = slot
        self.steps: Mapping[str, BaseStep] = steps
        self.graph: PipelineGraph = self._build_graph()
        self._parameters: dict[str, dict[str, Any]] = {}
        self._options: dict[str, dict[str, Any]] = {}  # slot -> execution options from config

    def connect(self, *args: Any, **kwargs: Any) -> None:
        """Call each step with the outputs of earlier steps. Override in subclasses."""
        raise NotImplementedError

    def _build_graph(self) -> PipelineGraph:
        builder = GraphBuilder(self.NAME, self.steps)
        token = set_builder(builder)
        try:
            self.connect(**self.steps)
        except ValueError as e:
            if "unpack" not in str(e):
                raise
            counts = ", ".join(
                f"{slot} returns {len(s.SIGNATURE.outputs)}" for slot, s in self.steps.items()
            )
            raise DefinitionError(
                f"Pipeline {self.NAME!r} unpacked a step's outputs into the wrong number of "
                f"names ({e}). Output counts: {counts}."
            ) from None
        finally:
            reset_builder(token)
        return builder.build()

    # -- configuration -------------------------------------------------------------------

    @property
    def parameters(self) -> dict[str, dict[str, Any]]:
        """Per-slot config overrides set with :meth:`with_config`."""
        return copy.deepcopy(self._parameters)

    def options_of(self, slot: str) -> ExecutionOptions:
        """The execution options of the step in ``slot``, after the pipeline config."""
        step = self.steps[slot]
        return step.options.updated(f"Step {slot!r}", **self._options.get(slot, {}))

    def with_config(self, config: str | Mapping[str, Any]) -> BasePipeline:
        """A copy with step parameters from a YAML file or a mapping.

        The form is ``{"steps": {slot: {"parameters": {field: value}, "retries": 2}}}``: beside
        ``parameters``, a slot may set the execution options ``retries``, ``retry_delay``,
        ``retry_backoff``, ``timeout`` and ``resources`` (see ``ExecutionOptions``).
        """
        if isinstance(config, str):
            import yaml

            try:
                with open(config) as f:
                    config = yaml.safe_load(f) or {}
            except (OSError, yaml.YAMLError) as e:
                raise ConfigError(f"Cannot read pipeline config {config!r}: {e}") from e
        if not isinstance(config, Mapping):
            raise ConfigError(
                "A pipeline config is a mapping like {'steps': {slot: {'parameters': {...}}}}."
            )
        unknown_top = set(config) - {"steps"}
        if unknown_top:
            raise ConfigError(
                f"Unknown pipeline config key(s) {sorted(unknown_top)}; expected 'steps'."
            )
        clone = copy.copy(self)
        clone._parameters = copy.deepcopy(self._parameters)
        clone._options = copy.deepcopy(self._options)
        for slot, body in (config.get("steps") or {}).items():
            if slot not in self.steps:
                raise ConfigError(
                    f"Pipeline config names step {slot!r}, but pipeline {self.NAME!r} has slots "
                    f"{list(self.steps)}."
                )
            body = body or {}
            params = body.get("parameters", {}) if isinstance(body, Mapping) else None
            extra = set(body) - {"parameters", *OPTION_NAMES} if params is not None else set()
            if extra or not isinstance(params, Mapping):
                raise ConfigError(
                    f"Config for step {slot!r} must be {{'parameters': {{...}}}} plus execution "
                    f"options ({', '.join(OPTION_NAMES)}); got {body!r}."
                )
            clone._parameters.setdefault(slot, {}).update(params)
            self.steps[slot].resolve_config(clone._parameters[slot])  # fail now, not mid-run
            options = {k: v for k, v in body.items() if k in OPTION_NAMES}
            if options:
                merged = {**clone._options.get(slot, {}), **options}
                self.steps[slot].options.updated(f"Config for step {slot!r}", **merged)
                clone._options[slot] = merged
        return clone

    # -- running -------------------------------------------------------------------------

    def run(self, run_name: str | None = None, *, tags: Mapping[str, str] | None = None) -> RunView:
        """Run on the active stack and return the recorded run.

        ``tags`` label the run, e.g. ``{"team": "vision", "exp": "lr-sweep"}`` (string keys
        and values; editable later with ``runstack run tag``), and filter listings:
        ``pipeline.get_runs(tags={"exp": "lr-sweep"})``.

        Raises :class:`~runstack.exceptions.StepExecutionError` naming the pipeline, run and
        step when a step fails; the step's own exception is its ``__cause__``.
        """
        from runstack.repository import Repository

        return Repository().active_stack.run_pipeline(self, run_name=run_name, tags=tags)


@overload
def pipeline(func: Callable[..., Any]) -> type[BasePipeline]: ...
@overload
def pipeline(
    func: None = None, *, name: str | None = None, enable_cache: bool = True
) -> Callable[[Callable[..., Any]], type[BasePipeline]]: ...


def pipeline(
    func: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    enable_cache: bool = True,
) -> Any:
    """Turn a function whose parameters are step slots into a pipeline class."""

    def wrap(f: Callable[..., Any]) -> type[BasePipeline]:
        attrs = {
            "connect": staticmethod(f),
            "NAME": name or f.__name__,
            "ENABLE_CACHE": enable_cache,
            "__module__": f.__module__,
            "__qualname__": f.__qualname__,
            "__doc__": f.__doc__,
        }
        return type(f.__name__, (BasePipeline,), attrs)

    return wrap(func) if func is not None else wrap
