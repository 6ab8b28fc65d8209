"""Define steps: ``@step`` functions or ``BaseStep`` classes with typed inputs and outputs."""

from runstack.steps._base_step import BaseStep, step
from runstack.steps._config import BaseStepConfig
from runstack.steps._context import StepContext
from runstack.steps._output import Output

__all__ = ["BaseStep", "BaseStepConfig", "Output", "StepContext", "step"]
