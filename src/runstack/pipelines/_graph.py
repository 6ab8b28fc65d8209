"""The immutable step graph a pipeline function builds, checked before anything runs."""

from __future__ import annotations

import graphlib
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from runstack.exceptions import DefinitionError
from runstack.steps import BaseStep
from runstack.steps._signature import concrete_class, type_name


@dataclass(frozen=True)
class OutputRef:
    """One output of one step slot, as handed to later steps while connecting."""

    slot: str
    output: str
    type: Any

    def __iter__(self) -> Any:
        raise DefinitionError(
            f"Output {self.output!r} of step {self.slot!r} is a single output and cannot be "
            "unpacked. Declare several outputs with -> Output(a=..., b=...) to unpack them."
        )


@dataclass(frozen=True)
class StepNode:
    slot: str
    step: BaseStep
    inputs: Mapping[str, OutputRef]

    @property
    def upstream(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(ref.slot for ref in self.inputs.values()))

    def __reduce__(self) -> Any:
        # The read-only inputs view cannot be pickled; ship a dict and wrap it again.
        return (_node, (self.slot, self.step, dict(self.inputs)))


def _node(slot: str, step: BaseStep, inputs: dict[str, OutputRef]) -> StepNode:
    return StepNode(slot, step, MappingProxyType(inputs))


@dataclass(frozen=True)
class PipelineGraph:
    """Step nodes in a valid execution order (dependencies first)."""

    name: str
    nodes: tuple[StepNode, ...]

    def node(self, slot: str) -> StepNode:
        for n in self.nodes:
            if n.slot == slot:
                return n
        raise KeyError(slot)


class GraphBuilder:
    """Receives step calls while the pipeline function runs and turns them into a graph."""

    def __init__(self, pipeline_name: str, slots: Mapping[str, BaseStep]) -> None:
        self.pipeline_name = pipeline_name
        self._slot_of = {id(s): name for name, s in slots.items()}
        self._slots = slots
        self._nodes: dict[str, StepNode] = {}

    def connect(self, step: BaseStep, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        where = f"pipeline {self.pipeline_name!r}"
        slot = self._slot_of.get(id(step))
        if slot is None:
            raise DefinitionError(
                f"Step {step.NAME!r} was called in {where} but is not one of its steps "
                f"({', '.join(self._slots)}). Pass every step to the pipeline as an argument."
            )
        if slot in self._nodes:
            raise DefinitionError(
                f"Step {slot!r} was called twice in {where}. Each step instance runs once per "
                "run; pass a second instance in its own slot to run the step again."
            )
        names = list(step.SIGNATURE.inputs)
        bound = bind_arguments(
            names,
            args,
            kwargs,
            owner=f"Step {slot!r} ({step.NAME}) in {where}",
            noun="input",
            hint="Pass the output of an earlier step for each.",
        )
        inputs: dict[str, OutputRef] = {}
        for name in names:
            ref = bound[name]
            if isinstance(ref, tuple) and ref and all(isinstance(r, OutputRef) for r in ref):
                raise DefinitionError(
                    f"Input {name!r} of step {slot!r} got all {len(ref)} outputs of step "
                    f"{ref[0].slot!r} at once. Unpack them first: `a, b = {ref[0].slot}()`."
                )
            if not isinstance(ref, OutputRef):
                raise DefinitionError(
                    f"Input {name!r} of step {slot!r} got {type(ref).__name__} {ref!r:.60}; "
                    "inputs must be outputs of other steps. Pass constants through a "
                    "BaseStepConfig parameter instead."
                )
            _check_compatible(ref, step.SIGNATURE.inputs[name], slot, name)
            inputs[name] = ref
        self._nodes[slot] = StepNode(slot, step, MappingProxyType(inputs))
        refs = tuple(OutputRef(slot, o, t) for o, t in step.SIGNATURE.outputs.items())
        if not refs:
            return None
        return refs[0] if len(refs) == 1 else refs

    def build(self) -> PipelineGraph:
        unused = [s for s in self._slots if s not in self._nodes]
        if unused:
            raise DefinitionError(
                f"Step(s) {unused} were passed to pipeline {self.pipeline_name!r} but never "
                "called in its function. Call each step, or leave it out."
            )
        # Steps can only consume outputs of steps called before them, so the call order is
        # already a topological order; graphlib guards that promise.
        upstream = {s: n.upstream for s, n in self._nodes.items()}
        try:
            graphlib.TopologicalSorter(upstream).prepare()
        except graphlib.CycleError as e:
            raise DefinitionError(
                f"Pipeline {self.pipeline_name!r} has a cycle: {' -> '.join(e.args[1])}."
            ) from None
        return PipelineGraph(self.pipeline_name, tuple(self._nodes.values()))


def bind_arguments(
    names: list[str],
    args: tuple[Any, ...],
    kwargs: Mapping[str, Any],
    *,
    owner: str,
    noun: str,
    hint: str,
) -> dict[str, Any]:
    """Match positional and keyword arguments to ``names``, as a call would, with our errors."""
    if len(args) > len(names):
        raise DefinitionError(
            f"{owner} has {len(names)} {noun}(s) {names}, but {len(args)} were given."
        )
    bound: dict[str, Any] = dict(zip(names, args, strict=False))
    for key, value in kwargs.items():
        if key not in names:
            raise DefinitionError(f"{owner} has no {noun} {key!r}; its {noun}s are {names}.")
        if key in bound:
            raise DefinitionError(f"{owner}: {noun} {key!r} was given twice.")
        bound[key] = value
    missing = [n for n in names if n not in bound]
    if missing:
        raise DefinitionError(f"{owner} is missing {noun}(s) {missing}. {hint}")
    return bound


def _check_compatible(ref: OutputRef, declared: Any, slot: str, name: str) -> None:
    produced, wanted = concrete_class(ref.type), concrete_class(declared)
    if produced is None or wanted is None or issubclass(produced, wanted):
        return
    if wanted is float and produced is int:
        return
    raise DefinitionError(
        f"Input {name!r} of step {slot!r} expects {type_name(declared)}, but output "
        f"{ref.output!r} of step {ref.slot!r} is declared as {type_name(ref.type)}."
    )
