"""2. The seed "fetching historic runs" pipeline end to end: 3 steps, the last reads history.

Warm, in one process, in a fresh repository: the history it scans grows by one run per
repeat (a handful of runs), so this is the cost of a small run, not of a large history
(the history benchmark covers that). The baseline is the same three functions called
directly, with the history kept in a Python list.
"""

from __future__ import annotations

import contextlib
import io

from bench import _pipelines as p
from bench._core import Figure, Mode, median, paired, scratch, using_repository


def run(mode: Mode, backend: str = "sqlite", rebuild: bool = False) -> list[Figure]:
    with scratch("seed") as tmp, using_repository(tmp), contextlib.redirect_stdout(io.StringIO()):
        pipe = p.seed_pipeline()
        s, b = paired(pipe.run, p.seed_direct, mode.repeats, warmup=2)
    ts, tb = median(s), median(b)
    return [
        Figure(
            "seed",
            "seed pipeline run, warm",
            ts * 1e3,
            "ms",
            "first_pipeline(...).run() (3 steps, step_3 scans history)",
            ts,
            "the 3 functions called directly",
            tb,
            ts / tb,
            s,
            b,
            None,
            f"history of 3 to {mode.repeats + 2} runs; (run - direct) / 3 steps = "
            f"{(ts - tb) / 3 * 1e3:.2f} ms",
        )
    ]
