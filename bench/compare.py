"""Run diff: ``run_a.diff(run_b)`` of two runs of a 22-step pipeline.

- *Everything differs*: one parameter changes every output: a table (``frame_rows / 10`` rows
  x 8 float columns + 1 text column), a float64 array (``array_mb / 10`` MB) and 20 steps of
  a float and an int. The baseline is the floor under describing those differences without
  runstack: per-column statistics of both tables (``statistics_of`` on ``pq.read_table``),
  ``np.load`` and min/max/mean/std of both arrays, ``json.loads`` of every scalar file.
- *Identical*: the second run is all cache hits, so the diff is records only. The baseline is
  one hand-written SQL query for both runs' steps and output hashes.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
from typing import Any

from bench._core import Figure, Mode, median, paired, scratch, using_repository
from runstack.pipelines import BasePipeline
from runstack.steps import BaseStepConfig, Output, step

SMALL_STEPS = 20


class Size(BaseStepConfig):
    rows: int = 1000
    floats: int = 1000
    shift: float = 0.0


@step
def table(config: Size) -> Any:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.random((config.rows, 8)) + config.shift)
    frame.columns = [f"c{i}" for i in range(8)]
    frame["label"] = np.where(frame["c0"] > 0.5, "high", "low")
    return frame


@step
def array(config: Size) -> Any:
    import numpy as np

    return np.random.default_rng(1).random(config.floats) + config.shift


@step
def scalar(config: Size) -> Output(score=float, count=int):  # type: ignore[valid-type]
    return 0.5 + config.shift, int(config.shift * 10)


def _pipeline_class() -> type[BasePipeline]:
    slots = ["t", "a", *(f"s{i}" for i in range(SMALL_STEPS))]
    source = f"def connect({', '.join(slots)}):\n" + "".join(f"    {s}()\n" for s in slots)
    namespace: dict[str, Any] = {}
    exec(source, namespace)  # the slot names are the signature, so generate it
    return type(
        "diffed", (BasePipeline,), {"connect": staticmethod(namespace["connect"]), "NAME": "diffed"}
    )


def _uris(run: Any) -> dict[str, list[Any]]:
    """Where each output's bytes are: a folder, or (a small value) the bytes kept inline in
    its record, which is what the diff reads too."""
    found: dict[str, list[Any]] = {"table": [], "array": [], "value": []}
    for s in run.steps:
        for out in s.outputs.values():
            kind = "table" if s.name == "t" else "array" if s.name == "a" else "value"
            found[kind].append(out._record.inline if out.is_inline else out.uri)
    return found


def _raw_describe(uris: list[dict[str, list[Any]]]) -> None:
    import numpy as np
    import pyarrow.parquet as pq

    from runstack.materializers._tabular import statistics_of

    for side in uris:
        for uri in side["table"]:
            statistics_of(pq.read_table(os.path.join(uri, "data.parquet")))
        for uri in side["array"]:
            data = np.load(os.path.join(uri, "array.npy"), allow_pickle=False)
            (data.min(), data.max(), data.mean(), data.std())
        for where in side["value"]:
            if isinstance(where, bytes):
                json.loads(where)
                continue
            with open(os.path.join(where, "data.json"), "rb") as f:
                json.loads(f.read())


RAW_SQL = """
SELECT s.name, s.status, s.cache_key, o.name, a.content_hash FROM steps s
JOIN runs r ON r.id = s.run_id
LEFT JOIN step_outputs o ON o.step_id = s.id
LEFT JOIN artifacts a ON a.id = o.artifact_id
WHERE r.name IN (:a, :b) ORDER BY s.run_id, s.position, o.position
"""


def run(mode: Mode, backend: str = "sqlite", rebuild: bool = False) -> list[Figure]:
    import sqlalchemy as sa

    rows, floats = mode.frame_rows // 10, mode.array_mb * 2**20 // 80
    cls = _pipeline_class()

    def make(shift: float) -> BasePipeline:
        size = Size(rows=rows, floats=floats, shift=shift)
        small = {f"s{i}": scalar(config=size) for i in range(SMALL_STEPS)}
        return cls(t=table(config=size), a=array(config=size), **small)

    with (
        scratch("compare") as tmp,
        using_repository(tmp) as repo,
        contextlib.redirect_stdout(io.StringIO()),
    ):
        before = make(0.0).run(run_name="before")
        after = make(1.0).run(run_name="after")
        make(0.0).run(run_name="same")
        uris = [_uris(before), _uris(after)]
        history = repo.active_stack.history

        def diff(b: str) -> Any:
            return history.get_run("before").diff(history.get_run(b))

        assert len(diff("after").differences) == SMALL_STEPS + 2
        assert diff("same").identical
        s1, b1 = paired(lambda: diff("after"), lambda: _raw_describe(uris), mode.repeats)
        engine = repo.active_stack.metadata_store.engine

        def raw_records() -> None:
            with engine.connect() as conn:
                conn.execute(sa.text(RAW_SQL), {"a": "before", "b": "same"}).all()

        s2, b2 = paired(lambda: diff("same"), raw_records, mode.repeats)
    figures = []
    for name, s, b, base, note in (
        (
            "everything differs",
            s1,
            b1,
            "statistics_of + np.load + json.loads of the same artifacts",
            f"table {rows} x 9, array {floats * 8 / 2**20:.0f} MB, {SMALL_STEPS} x 2 scalars",
        ),
        (
            "identical runs (cache hits)",
            s2,
            b2,
            "one SQL query for both runs' steps and output hashes",
            f"{SMALL_STEPS + 2} steps, {SMALL_STEPS * 2 + 2} outputs",
        ),
    ):
        ms, mb = median(s), median(b)
        figures.append(
            Figure(
                "compare",
                f"run diff, {name}",
                ms * 1e3,
                "ms",
                "history.get_run(a).diff(history.get_run(b))",
                ms,
                base,
                mb,
                ms / mb,
                s,
                b,
                None,
                note,
            )
        )
    return figures
