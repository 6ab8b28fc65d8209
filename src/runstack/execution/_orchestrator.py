"""Orchestrators decide where and when steps run; they always run them through StepRunner."""

from __future__ import annotations

from typing import Protocol

from runstack.execution._plan import RunPlan
from runstack.execution._step_runner import StepRunner
from runstack.models import ArtifactRecord


class Orchestrator(Protocol):
    def execute(self, plan: RunPlan, runner: StepRunner) -> None:
        """Run every step of ``plan`` through ``runner``, dependencies first."""


class LocalOrchestrator:
    """Runs the steps one after another in this process, in the plan's order."""

    def execute(self, plan: RunPlan, runner: StepRunner) -> None:
        produced: dict[tuple[str, str], ArtifactRecord] = {}
        for sp in plan.steps:
            inputs = {
                name: produced[(ref.slot, ref.output)] for name, ref in sp.node.inputs.items()
            }
            outcome = runner.run_step(sp, inputs)
            for name, art in outcome.outputs.items():
                produced[(sp.slot, name)] = art

    def __repr__(self) -> str:
        return "LocalOrchestrator()"
