"""5. Artifact I/O: a large array and a large DataFrame written by one step and read by the next.

The subject is a whole 2-step run (``producer -> consumer``): the producer returns the value,
runstack writes it with its materializer, the consumer gets it read back. The baseline is the
same bytes written and read by hand: ``np.save``/``np.load`` for the array, pyarrow
``write_table``/``read_table`` (with the pandas conversions) for the DataFrame. The ratio
therefore includes the run's fixed cost (a few ms), which is small beside ~100 MB of I/O.
Both sides sum the array after reading it: runstack reads large arrays memory-mapped, so
without touching the values its "read" would load nothing.
Artifacts are deleted between repeats, outside the timed region.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench._core import Budget, Figure, Mode, clock, median, scratch, using_repository
from runstack.pipelines import pipeline
from runstack.steps import step

BUDGET = Budget("<=", 1.3, "x")
PAYLOAD: dict[str, Any] = {}


@step(enable_cache=False)
def write_array() -> np.ndarray:
    return PAYLOAD["array"]  # type: ignore[no-any-return]


@step(enable_cache=False)
def read_array(data: np.ndarray) -> float:
    return float(data.sum())  # touches every value: a memory-mapped read must load them all


@step(enable_cache=False)
def write_frame() -> pd.DataFrame:
    return PAYLOAD["frame"]  # type: ignore[no-any-return]


@step(enable_cache=False)
def read_frame(data: pd.DataFrame) -> int:
    return len(data)


@pipeline(enable_cache=False)
def handoff(producer, consumer):  # type: ignore[no-untyped-def]
    consumer(producer())


def _raw_array(folder: Path) -> None:
    path = folder / "array.npy"
    with open(path, "wb") as f:
        np.save(f, PAYLOAD["array"], allow_pickle=False)
    with open(path, "rb") as f:
        back = np.load(f, allow_pickle=False)
    back.sum()  # as the consumer step does


def _raw_frame(folder: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = folder / "data.parquet"
    pq.write_table(pa.Table.from_pandas(PAYLOAD["frame"]), path)
    back = pq.read_table(path).to_pandas()
    assert len(back) == len(PAYLOAD["frame"])


def _empty(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)


def run(mode: Mode, backend: str = "sqlite", rebuild: bool = False) -> list[Figure]:
    rng = np.random.default_rng(0)
    array = rng.random(mode.array_mb * 2**20 // 8)
    rows = mode.frame_rows
    frame = pd.DataFrame(rng.random((rows, 10)), columns=[f"c{i}" for i in range(10)])
    PAYLOAD.update(array=array, frame=frame)
    cases = [
        (
            f"{mode.array_mb} MB float64 array",
            handoff(write_array(), read_array()),
            _raw_array,
            "np.save + np.load of the same array",
        ),
        (
            f"{rows:.0e} x 10 DataFrame".replace("e+0", "e"),
            handoff(write_frame(), read_frame()),
            _raw_frame,
            "pyarrow write_table + read_table (with pandas conversions)",
        ),
    ]
    figures: list[Figure] = []
    try:
        with scratch("artifacts") as tmp, using_repository(tmp / "repo") as repo:
            raw_dir = tmp / "raw"
            stored = repo.config_dir / "artifacts"
            for label, pipe, raw, raw_label in cases:
                s: list[float] = []
                b: list[float] = []
                for i in range(mode.repeats + 1):  # the first pair is a warm-up
                    _empty(raw_dir)
                    tb = clock(lambda raw=raw: raw(raw_dir))
                    _empty(stored)
                    ts = clock(pipe.run)
                    if i:
                        s.append(ts)
                        b.append(tb)
                _empty(stored)
                ms, mb = median(s), median(b)
                figures.append(
                    Figure(
                        "artifacts",
                        f"{label}: write + read",
                        ms / mb,
                        "x",
                        "2-step run: producer -> consumer",
                        ms,
                        raw_label,
                        mb,
                        ms / mb,
                        s,
                        b,
                        BUDGET,
                        f"run - raw = {(ms - mb) * 1e3:.1f} ms; files on {_fs(tmp)}",
                    )
                )
    finally:
        PAYLOAD.clear()
    return figures


def _fs(path: Path) -> str:
    try:
        st = os.statvfs(path)
    except OSError:
        return "?"
    return f"a disk with {st.f_bavail * st.f_frsize / 2**30:.0f} GiB free"
