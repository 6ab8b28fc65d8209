"""Turns a connected pipeline into a run plan: resolved configs, materializers, cache flags.

Everything that can be wrong with a pipeline is found here, before the first step runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

from runstack.exceptions import DefinitionError
from runstack.materializers import BaseMaterializer, registry
from runstack.pipelines._graph import StepNode
from runstack.steps._options import DEFAULT_OPTIONS, ExecutionOptions
from runstack.steps._signature import concrete_class, type_name

if TYPE_CHECKING:
    from runstack.models import ArtifactRecord
    from runstack.pipelines import BasePipeline
    from runstack.steps import BaseStepConfig


@dataclass(frozen=True)
class StepPlan:
    node: StepNode
    position: int
    config: BaseStepConfig | None
    parameters: dict[str, Any]
    # None means "choose by the type of the value at run time" (for Any / Union outputs).
    materializers: dict[str, type[BaseMaterializer] | None]
    cache_enabled: bool
    options: ExecutionOptions = DEFAULT_OPTIONS

    @property
    def slot(self) -> str:
        return self.node.slot

    @property
    def step(self) -> Any:
        return self.node.step


@dataclass(frozen=True)
class RunPlan:
    pipeline_name: str
    steps: tuple[StepPlan, ...]

    @cached_property
    def consumers(self) -> dict[str, tuple[StepPlan, ...]]:
        """By slot, the steps taking any of its outputs as inputs, in plan order."""
        found: dict[str, list[StepPlan]] = {sp.slot: [] for sp in self.steps}
        for sp in self.steps:
            for slot in sp.node.upstream:
                found[slot].append(sp)
        return {slot: tuple(steps) for slot, steps in found.items()}

    def inputs_for(
        self, sp: StepPlan, produced: Mapping[tuple[str, str], ArtifactRecord]
    ) -> dict[str, ArtifactRecord] | None:
        """The artifacts ``sp`` takes as inputs, from the outputs produced so far by
        ``(slot, output)``; None while any of them is still missing."""
        try:
            return {name: produced[(ref.slot, ref.output)] for name, ref in sp.node.inputs.items()}
        except KeyError:
            return None


def make_plan(pipeline: BasePipeline) -> RunPlan:
    overrides = pipeline.parameters
    plans = []
    for position, node in enumerate(pipeline.graph.nodes):
        step = node.step
        config = step.resolve_config(overrides.get(node.slot))
        explicit = step.materializers
        materializers: dict[str, type[BaseMaterializer] | None] = {}
        for name, declared in step.SIGNATURE.outputs.items():
            if name in explicit:
                materializers[name] = explicit[name]
                continue
            klass = concrete_class(declared)
            if klass is None:
                materializers[name] = None
                continue
            found = registry.find(klass)
            if found is None:
                raise DefinitionError(
                    f"Output {name!r} of step {node.slot!r} ({step.NAME}) in pipeline "
                    f"{pipeline.NAME!r} is declared as {type_name(declared)}, and no materializer "
                    "handles that type. Subclass runstack.materializers.BaseMaterializer with "
                    f"ASSOCIATED_TYPES = ({type_name(klass)},), or set one with "
                    f"{step.NAME}().with_return_materializers({{{name!r}: YourMaterializer}})."
                )
            materializers[name] = found
        plans.append(
            StepPlan(
                node=node,
                position=position,
                config=config,
                parameters=config.model_dump(mode="json") if config is not None else {},
                materializers=materializers,
                cache_enabled=pipeline.ENABLE_CACHE and step.caching_requested,
                options=pipeline.options_of(node.slot),
            )
        )
    return RunPlan(pipeline.NAME, tuple(plans))
