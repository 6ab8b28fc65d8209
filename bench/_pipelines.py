"""The steps and pipelines the benchmarks run. They live in a module so that code hashes work."""

from __future__ import annotations

import time
from random import randint
from typing import Any

from runstack.pipelines import BasePipeline, pipeline
from runstack.steps import Output, StepContext, step

# -- 1. a linear chain of trivial steps (int in, int out) ----------------------------------


def first() -> int:
    return 1


def increment(x: int) -> int:
    return x + 1


first_step = step(enable_cache=False)(first)
increment_step = step(enable_cache=False)(increment)


def linear_pipeline_class(length: int) -> type[BasePipeline]:
    """A pipeline ``s0 -> s1 -> ... -> s{length-1}``: slots must be named parameters."""
    slots = [f"s{i}" for i in range(length)]
    body = "".join(f"    x = {s}(x)\n" for s in slots[1:])
    source = f"def connect({', '.join(slots)}):\n    x = s0()\n{body}"
    namespace: dict[str, Any] = {}
    exec(source, namespace)  # the slot names are the signature, so generate it
    return type(
        f"linear_{length}",
        (BasePipeline,),
        {"connect": staticmethod(namespace["connect"]), "NAME": f"linear_{length}"},
    )


def linear_pipeline(length: int) -> BasePipeline:
    return linear_pipeline_class(length)(
        first_step(), *[increment_step() for _ in range(length - 1)]
    )


def linear_direct(length: int) -> int:
    """The same functions called directly: the baseline of the per-step overhead."""
    x = first()
    for _ in range(length - 1):
        x = increment(x)
    return x


# -- 2. the seed "fetching historic runs" pipeline, as the seed document writes it ---------


@step
def my_first_step() -> Output(output_int=int, output_float=float):  # type: ignore[valid-type]
    """Step that returns a pre-defined integer and float"""
    return 7, 0.1


@step(enable_cache=False)
def my_second_step(input_int: int, input_float: float) -> Output(
    multiplied_output_int=int, multiplied_output_float=float
):  # type: ignore[valid-type]
    """Step that doubles the inputs"""
    multiplier = randint(0, 100)
    return multiplier * input_int, multiplier * input_float


def highest_so_far(history: Any) -> int:
    """The seed's scan: every run of ``first_pipeline``, the output of its ``step_2``."""
    highest_int = 0
    try:
        pipeline_runs = history.get_pipeline("first_pipeline").runs
    except KeyError:
        return highest_int
    for run in pipeline_runs:
        try:
            multiplied_output_int = run.get_step("step_2").outputs["multiplied_output_int"].read()
        except KeyError:
            pass
        else:
            if multiplied_output_int > highest_int:
                highest_int = multiplied_output_int
    return highest_int


@step
def my_third_step(context: StepContext, input_int: int) -> bool:
    """Step that decides if this pipeline run produced the highest value for `input_int`"""
    return not highest_so_far(context.metadata_store) > input_int


@step
def my_third_step_blind(input_int: int) -> bool:
    """``my_third_step`` without reading history: builds large histories in linear time."""
    return input_int >= 0


@pipeline
def first_pipeline(step_1, step_2, step_3):  # type: ignore[no-untyped-def]
    output_1, output_2 = step_1()
    output_1, output_2 = step_2(output_1, output_2)
    step_3(output_1)


def seed_pipeline() -> BasePipeline:
    return first_pipeline(step_1=my_first_step(), step_2=my_second_step(), step_3=my_third_step())


def seed_pipeline_blind() -> BasePipeline:
    return first_pipeline(
        step_1=my_first_step(), step_2=my_second_step(), step_3=my_third_step_blind()
    )


def seed_direct() -> bool:
    """The seed's three functions called directly, history read from a list (the baseline)."""
    a, b = 7, 0.1
    multiplier = randint(0, 100)
    a, b = multiplier * a, multiplier * b
    return not max(_SEEN, default=0) > a


_SEEN: list[int] = [0]


# -- 3. a fan-out of sleeping steps and a join (the distributed benchmark) ------------------

NAP_S = 0.5


@step(enable_cache=False)
def nap(x: int) -> int:
    """Half a second of waiting: work that overlaps perfectly when steps run at once."""
    time.sleep(NAP_S)
    return x


@step(enable_cache=False)
def join8(a0: int, a1: int, a2: int, a3: int, a4: int, a5: int, a6: int, a7: int) -> int:
    return a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7


@pipeline
def fanout_8(s, n0, n1, n2, n3, n4, n5, n6, n7, j):  # type: ignore[no-untyped-def]
    x = s()
    j(n0(x), n1(x), n2(x), n3(x), n4(x), n5(x), n6(x), n7(x))


def fanout_pipeline() -> BasePipeline:
    """``source -> 8 x nap (0.5 s) -> join``: 4 s in a row, 0.5 s when the naps overlap."""
    naps = {f"n{i}": nap() for i in range(8)}
    return fanout_8(s=first_step(), j=join8(), **naps)
