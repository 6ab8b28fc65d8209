"""Execution: plans a pipeline run, runs its steps through one runner, records the outcome."""

from runstack.execution._events import Listener, RunEvent, log_listener
from runstack.execution._launch import launch
from runstack.execution._orchestrator import (
    LocalOrchestrator,
    Orchestrator,
    ParallelOrchestrator,
)
from runstack.execution._plan import RunPlan, StepPlan, make_plan
from runstack.execution._ray import RayOrchestrator  # Ray itself is imported when a run starts
from runstack.execution._step_runner import StepRunner

__all__ = [
    "Listener",
    "LocalOrchestrator",
    "Orchestrator",
    "ParallelOrchestrator",
    "RayOrchestrator",
    "RunEvent",
    "RunPlan",
    "StepPlan",
    "StepRunner",
    "launch",
    "log_listener",
    "make_plan",
]
