"""1. Per-step overhead: a 20-step linear pipeline of trivial steps vs calling them directly.

The budget figure is ``(run time - direct time) / 20``: everything runstack adds to a run
(finding the repository and stack, planning, recording the run) shared out over its steps.
A 1-step pipeline is timed too, alternating with the 20-step one, which splits that into a
fixed cost per run and a marginal cost per added step (the median of the slopes between
each pair of samples).

Each sample is the mean of ``BATCH`` runs in a row (see ``bench._core.clock``): a run timed
alone right after a forced full collection pays ~0.4 ms for the collection's aftermath, not
for anything runstack does; that figure is reported too, without a budget.
"""

from __future__ import annotations

from bench import _pipelines as p
from bench._core import (
    Budget,
    Figure,
    Mode,
    clock,
    median,
    paired,
    scratch,
    using_repository,
)

LENGTH = 20
BUDGET = Budget("<=", 1.0, "ms")
STEP_BUDGET = Budget("<=", 0.3, "ms")  # issue 15: one transaction + one publish is ~0.22 ms
FIXED_BUDGET = Budget("<=", 0.5, "ms")
BATCH = 10  # runs per timed sample


def run(mode: Mode, backend: str = "sqlite", rebuild: bool = False) -> list[Figure]:
    with scratch("overhead") as tmp, using_repository(tmp):
        long_ = p.linear_pipeline(LENGTH)
        short = p.linear_pipeline(1)
        # Cache is off for these steps: every step runs and is recorded each time. The two
        # pipelines alternate, so each pair of samples sees the machine at the same speed
        # (it drifts by tens of percent over minutes here): the slope is taken per pair.
        s20, s1 = paired(long_.run, short.run, mode.repeats, warmup=2, batch=BATCH)
        # The direct calls take microseconds: timed apart, drift moves them by nanoseconds.
        p.linear_direct(LENGTH)
        d20 = [clock(lambda: p.linear_direct(LENGTH), BATCH) for _ in range(mode.repeats)]
        d1 = [clock(lambda: p.linear_direct(1), BATCH) for _ in range(mode.repeats)]
        alone = [clock(short.run) for _ in range(mode.repeats)]
    t20, b20, t1 = median(s20), median(d20), median(s1)
    per_step = (t20 - b20) / LENGTH
    marginal = median([(a - b) / (LENGTH - 1) for a, b in zip(s20, s1, strict=True)])
    fixed = t1 - marginal
    return [
        Figure(
            "overhead",
            "per-step overhead, 20-step pipeline",
            per_step * 1e3,
            "ms",
            f"{LENGTH}-step pipeline .run()",
            t20,
            f"same {LENGTH} functions called directly",
            b20,
            t20 / b20,
            s20,
            d20,
            BUDGET,
            "(run - direct) / 20; cache off, SQLite store, one process, warm",
        ),
        Figure(
            "overhead",
            "marginal cost of one more step",
            marginal * 1e3,
            "ms",
            "median over interleaved pairs of (20-step run - 1-step run) / 19",
            t20,
            "1-step pipeline .run()",
            t1,
            t20 / t1,
            s20,
            s1,
            STEP_BUDGET,
            "slope: what each added step costs (load inputs, write outputs, record)",
        ),
        Figure(
            "overhead",
            "fixed cost per run",
            fixed * 1e3,
            "ms",
            "1-step run - marginal step cost",
            t1,
            "1 function called directly",
            median(d1),
            t1 / median(d1),
            s1,
            d1,
            FIXED_BUDGET,
            "intercept: Repository(), stack, plan, run start/finish, returned RunView",
        ),
        Figure(
            "overhead",
            "1-step run, alone after a forced full collection",
            median(alone) * 1e3,
            "ms",
            "gc.collect(), then one 1-step run",
            median(alone),
            f"1-step run, mean of {BATCH} in a row",
            t1,
            median(alone) / t1,
            alone,
            s1,
            None,
            "what forcing a full collection right before adds to one call (see bench._core.clock)",
        ),
    ]
