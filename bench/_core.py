"""What every benchmark shares: modes, paired timing, figures with budgets, isolated repositories.

A figure is measured against a baseline taken in the same process, interleaved with it
(baseline, subject, baseline, subject...), so that load from other processes falls on both;
the median of the repeats is reported, with every raw time beside it.
"""

from __future__ import annotations

import contextlib
import gc
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"


@dataclass(frozen=True)
class Mode:
    """How much work one invocation does. ``quick`` exists to keep bench/ from rotting."""

    name: str
    repeats: int  # paired repeats for in-process timings
    process_repeats: int  # repeats for timings that start a process
    history_sizes: tuple[int, ...]
    array_mb: int
    frame_rows: int
    runs_per_process: int  # concurrency: runs each worker makes


MODES = {
    "quick": Mode("quick", 3, 3, (100, 1000), 10, 100_000, 5),
    "default": Mode("default", 9, 9, (100, 1000, 10_000, 100_000), 100, 1_000_000, 30),
    "full": Mode("full", 15, 15, (100, 1000, 10_000, 100_000), 100, 1_000_000, 60),
}


@dataclass
class Budget:
    """``figure <op> limit``, e.g. per-step overhead <= 1 ms."""

    op: str  # "<=", "<" or ">=" (a speed-up)
    limit: float
    unit: str

    def met(self, figure: float) -> bool:
        if self.op == ">=":
            return figure >= self.limit
        return figure <= self.limit if self.op == "<=" else figure < self.limit

    def __str__(self) -> str:
        return f"{self.op} {self.limit:g} {self.unit}"


@dataclass
class Figure:
    """One reported number: ``figure`` (in ``unit``) derived from subject and baseline times."""

    benchmark: str
    name: str
    figure: float
    unit: str
    subject: str
    subject_s: float  # median seconds
    baseline: str
    baseline_s: float | None
    ratio: float | None  # subject_s / baseline_s
    raw_subject_s: list[float] = field(default_factory=list)
    raw_baseline_s: list[float] = field(default_factory=list)
    budget: Budget | None = None
    note: str = ""

    @property
    def status(self) -> str:
        if self.budget is None:
            return ""
        return "PASS" if self.budget.met(self.figure) else "MISS"

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["budget"] = (
            None if self.budget is None else {**asdict(self.budget), "met": self.status == "PASS"}
        )
        d["status"] = self.status
        return d


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def clock(fn: Callable[[], Any], batch: int = 1) -> float:
    """Seconds one call of ``fn`` takes, with the garbage collector running as in a user's
    program (timeit pauses it, which flattered allocation-heavy figures such as the history
    scan by up to ~40%). A collection is forced before, so one sample does not pay for the
    garbage of the previous.

    ``batch``: time that many calls in a row and return the mean. For calls of about a
    millisecond: a forced full collection walks and relinks every tracked object (~70,000 in
    the overhead benchmark), and a 1-step run right after one takes ~0.4 ms longer (0.50 ms
    with no collection before it, 0.53 ms after ``gc.collect(1)``, 0.93 ms after
    ``gc.collect()``), a cost of forcing the collection that a user's loop does not pay
    (automatic full collections are rare). Garbage made inside the batch is still collected,
    and paid for, as the collector decides."""
    gc.collect()
    t0 = time.perf_counter()
    for _ in range(batch):
        fn()
    return (time.perf_counter() - t0) / batch


def paired(
    subject: Callable[[], Any],
    baseline: Callable[[], Any],
    repeats: int,
    warmup: int = 1,
    batch: int = 1,
) -> tuple[list[float], list[float]]:
    """Interleaved timings of ``subject`` and ``baseline``: (subject times, baseline times),
    each the mean of ``batch`` calls (see :func:`clock`)."""
    for _ in range(warmup):
        baseline()
        subject()
    s: list[float] = []
    b: list[float] = []
    for _ in range(repeats):
        b.append(clock(baseline, batch))
        s.append(clock(subject, batch))
    return s, b


def repeat(fn: Callable[[], Any], repeats: int, warmup: int = 1) -> list[float]:
    for _ in range(warmup):
        fn()
    return [clock(fn) for _ in range(repeats)]


@contextlib.contextmanager
def scratch(prefix: str) -> Iterator[Path]:
    """A temporary folder, removed afterwards (the benchmarks write large artifacts)."""
    path = Path(tempfile.mkdtemp(prefix=f"runstack-bench-{prefix}-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def using_repository(path: Path) -> Iterator[Any]:
    """Make ``path`` a runstack repository and the one ``Repository()`` finds, for a while.

    ``RUNSTACK_REPOSITORY`` is how a pipeline's ``run()`` finds it; the user's own
    repositories and the global default are never touched.
    """
    from runstack.repository import Repository

    repo = Repository.init(path)
    with environ(RUNSTACK_REPOSITORY=str(path)):
        yield repo


@contextlib.contextmanager
def environ(**values: str) -> Iterator[None]:
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


# Runs print no progress while timed: the figures are runstack's own cost, not a terminal's.
os.environ.setdefault("RUNSTACK_PROGRESS", "off")


def quiet_listener(_event: Any) -> None:
    """A run listener that reports nothing (the fast path for building history)."""
