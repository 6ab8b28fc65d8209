"""Define steps: ``@step`` functions or ``BaseStep`` classes with typed inputs and outputs."""

from runstack.steps._base_step import BaseStep, step
from runstack.steps._config import BaseStepConfig
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
