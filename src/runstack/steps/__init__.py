"""Define steps: ``@step`` functions or ``BaseStep`` classes with typed inputs and outputs."""

from typing import TYPE_CHECKING, Any

from runstack.steps._base_step import BaseStep, step
from runstack.steps._context import StepContext
from runstack.steps._interfaces import (
    BaseEvaluatorStep,
    BaseImporterStep,
    BaseSplitterStep,
    BaseTrainerStep,
    evaluator,
    importer,
    splitter,
    trainer,
)
from runstack.steps._options import ExecutionOptions
from runstack.steps._output import Output

if TYPE_CHECKING:
    from runstack.steps._config import BaseStepConfig


def __getattr__(name: str) -> Any:
    # BaseStepConfig is a pydantic model: pydantic (~100 ms to import) loads when a config
    # class is first used, not for every script that defines steps.
    if name == "BaseStepConfig":
        from runstack.steps._config import BaseStepConfig

        return BaseStepConfig
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "BaseEvaluatorStep",
    "BaseImporterStep",
    "BaseSplitterStep",
    "BaseStep",
    "BaseStepConfig",
    "BaseTrainerStep",
    "ExecutionOptions",
    "Output",
    "StepContext",
    "evaluator",
    "importer",
    "splitter",
    "step",
    "trainer",
]
