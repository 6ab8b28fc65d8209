"""6. Concurrency: runs per second with 1, 2 and 4 processes recording into one SQLite store.

Each worker is a fresh process (spawned) that imports runstack, makes one warm-up run, waits
at a barrier with the others, then calls ``pipeline.run()`` on a trivial 3-step pipeline
K times. Throughput is all runs over the wall time from the first start to the last finish;
the baseline is one process. Afterwards every run must be in the store, completed.
On a 2-core machine more than ~2x is not possible; contention shows as less.
"""

from __future__ import annotations

import multiprocessing as mp
import time
from typing import Any

from bench._core import Figure, Mode, median, scratch, using_repository

PROCESSES = (1, 2, 4)
LENGTH = 3


def _worker(runs: int, barrier: Any, results: Any) -> None:
    from bench import _pipelines as p

    pipe = p.linear_pipeline(LENGTH)
    pipe.run()  # warm: imports, store engine, schema check
    barrier.wait()
    start = time.time()
    for _ in range(runs):
        pipe.run()
    results.put((start, time.time()))


def _throughput(ctx: Any, procs: int, runs: int) -> float:
    """Seconds for ``procs`` processes to make ``runs`` runs each."""
    barrier = ctx.Barrier(procs)
    results = ctx.Queue()
    workers = [ctx.Process(target=_worker, args=(runs, barrier, results)) for _ in range(procs)]
    for w in workers:
        w.start()
    spans = [results.get(timeout=600) for _ in workers]
    for w in workers:
        w.join(timeout=60)
        if w.exitcode != 0:
            raise RuntimeError(f"a concurrency worker exited with {w.exitcode}")
    return max(e for _, e in spans) - min(s for s, _ in spans)


def run(mode: Mode, backend: str = "sqlite", rebuild: bool = False) -> list[Figure]:
    ctx = mp.get_context("spawn")
    runs = mode.runs_per_process
    repeats = max(1, mode.process_repeats // 3)
    walls: dict[int, list[float]] = {n: [] for n in PROCESSES}
    with scratch("concurrency") as tmp, using_repository(tmp) as repo:
        for _ in range(repeats):
            for n in PROCESSES:
                walls[n].append(_throughput(ctx, n, runs))
        expected = sum(len(w) * n * (runs + 1) for n, w in walls.items())
        recorded = repo.get_pipeline(f"linear_{LENGTH}").get_runs()
        done = sum(r.status.value == "completed" for r in recorded)
        if len(recorded) != expected or done != expected:
            raise AssertionError(
                f"expected {expected} completed runs in the store, found {len(recorded)} "
                f"({done} completed)"
            )
    # Runs per second for each repeat; figure = median throughput.
    rates = {n: [n * runs / w for w in walls[n]] for n in PROCESSES}
    base = median(rates[1])
    figures = []
    for n in PROCESSES:
        rate = median(rates[n])
        figures.append(
            Figure(
                "concurrency",
                f"{n} process{'es' if n > 1 else ''}, one SQLite store",
                rate,
                "runs/s",
                f"{n} x {runs} runs of a {LENGTH}-step pipeline",
                median(walls[n]),
                "1 process",
                median(walls[1]),
                rate / base,
                walls[n],
                walls[1],
                None,
                f"x{rate / base:.2f} the throughput of 1 process; ratio column = speed-up",
            )
        )
    return figures
