"""Pipelines the conformance suite runs on every backend (also imported by the worker script).

``first_pipeline`` is the historic-runs seed made deterministic: step_2 multiplies by its
configured ``multiplier``, and step_3 reads every earlier run's step_2 output through
``StepContext`` to decide whether this run produced the highest number.
"""

from __future__ import annotations

from runstack.pipelines import pipeline
from runstack.steps import BaseStepConfig, Output, StepContext, step


class MultiplierConfig(BaseStepConfig):
    multiplier: int = 2
    rate: float = 0.5
    fail: bool = False


@step
def my_first_step() -> Output(output_int=int, output_float=float):
    return 7, 0.1


@step(enable_cache=False)
def my_second_step(config: MultiplierConfig, input_int: int, input_float: float) -> Output(
    multiplied_output_int=int, multiplied_output_float=float
):
    if config.fail:
        raise RuntimeError(f"asked to fail with multiplier {config.multiplier}")
    return config.multiplier * input_int, config.multiplier * input_float


@step
def my_third_step(context: StepContext, input_int: int) -> Output(is_best=bool, seen=int):
    """True when no earlier run's step_2 produced a higher number; ``seen`` counts the values."""
    highest, seen = 0, 0
    for run in context.metadata_store.get_pipeline("first_pipeline").runs:
        try:
            value = run.get_step("step_2").outputs["multiplied_output_int"].read()
        except KeyError:
            continue  # a failed run has no step_2 outputs
        seen += 1
        highest = max(highest, value)
    return input_int >= highest, seen


@pipeline
def first_pipeline(step_1, step_2, step_3):
    output_1, output_2 = step_1()
    output_1, output_2 = step_2(output_1, output_2)
    step_3(output_1)


def make_first_pipeline(multiplier: int = 2, *, fail: bool = False, rate: float = 0.5):
    return first_pipeline(
        step_1=my_first_step(),
        step_2=my_second_step(MultiplierConfig(multiplier=multiplier, fail=fail, rate=rate)),
        step_3=my_third_step(),
    )


@step
def constant() -> int:
    return 1


@pipeline
def other_pipeline(only):
    only()
