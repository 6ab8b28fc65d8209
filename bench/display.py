"""7. Display: notebook ``_repr_html_`` of a run and of a big table output, and the report.

What a user waits for when a view is the last line of a notebook cell. Subjects are timed on
fresh views (nothing cached from a previous display); the baseline is reading the same facts
as text (the run's steps and their outputs' names; the table's Parquet footer), so the ratio
is what drawing and previewing add. Budget: well under a second for either display.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from bench import _pipelines as p
from bench._core import Budget, Figure, Mode, median, paired, scratch, using_repository
from runstack.pipelines import pipeline
from runstack.steps import step

BUDGET = Budget("<", 500.0, "ms")
STEPS = 20
PAYLOAD: dict[str, Any] = {}


@step(enable_cache=False)
def big_table() -> pd.DataFrame:
    return PAYLOAD["frame"]  # type: ignore[no-any-return]


@pipeline
def table_pipeline(make):  # type: ignore[no-untyped-def]
    make()


def _frame(rows: int) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "x": rng.normal(size=rows),
            "y": rng.integers(0, 1000, rows),
            "label": rng.choice(["a", "b", "c", "d"], rows),
        }
    )


def run(mode: Mode, backend: str = "sqlite", rebuild: bool = False) -> list[Figure]:
    import pyarrow.parquet as pq

    figures: list[Figure] = []
    with scratch("display") as tmp, using_repository(tmp) as repo:
        p.linear_pipeline(STEPS).run()
        PAYLOAD["frame"] = _frame(mode.frame_rows)
        table_pipeline(big_table()).run()
        PAYLOAD.clear()
        chain = repo.get_pipelines()[0].name

        def fresh_run() -> Any:
            return repo.get_pipeline(chain).latest_run

        def table_output() -> Any:
            return repo.get_pipeline("table_pipeline").latest_run.get_step("make").output

        def run_text() -> list[Any]:
            return [(s.name, s.status, s.duration, list(s.outputs)) for s in fresh_run().steps]

        def table_text() -> Any:
            path = table_output().uri.removeprefix("file://") + "/data.parquet"
            return pq.ParquetFile(path).metadata

        subjects = {
            f"run display ({STEPS} steps)": (lambda: fresh_run()._repr_html_(), run_text),
            f"table output display ({mode.frame_rows:,} rows)": (
                lambda: table_output()._repr_html_(),
                table_text,
            ),
        }
        for name, (subject, baseline) in subjects.items():
            s, b = paired(subject, baseline, mode.repeats)
            ts, tb = median(s), median(b)
            figures.append(
                Figure(
                    "display",
                    name,
                    ts * 1e3,
                    "ms",
                    f"{name}: _repr_html_ of a fresh view",
                    ts,
                    "the same facts read as text",
                    tb,
                    ts / tb if tb else None,
                    s,
                    b,
                    BUDGET,
                )
            )
    return figures
