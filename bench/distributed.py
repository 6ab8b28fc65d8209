"""7. Beyond one process: fan-out speed-up and per-step overhead on `parallel` and `ray`.

Fan-out: ``source -> 8 steps sleeping 0.5 s -> join`` on ``local`` (the baseline, about 4 s),
on ``parallel`` (processes, ``max_workers=8``) and on ``ray`` (a local instance started here
with ``num_cpus=8``). The figure is the speed-up, local time / time; Ray's start-up and the
first run (which starts its workers) are reported apart and kept out of it. Each repeat runs
the three one after another, so load from other processes falls on all of them.

Per-step overhead: a 20-step chain of trivial steps (cache off) on ``parallel`` (threads) and
``ray``, against the same 20 functions run one after another on the bare engine (a
``ThreadPoolExecutor``; a Ray task doing nothing): (runstack - bare) / 20. ``parallel`` with
processes is reported against a bare ``ProcessPoolExecutor`` without a budget.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
import time
from pathlib import Path
from typing import Any

from bench import _pipelines as p
from bench._core import (
    Budget,
    Figure,
    Mode,
    clock,
    median,
    quiet_listener,
    scratch,
    using_repository,
)

WORKERS = 8
LENGTH = 20
SPEEDUP = Budget(">=", 4.0, "x")
PER_STEP = Budget("<=", 2.0, "ms")
ROOT = Path(__file__).resolve().parents[1]


def _start_ray() -> tuple[Any, float]:
    import ray

    import runstack

    # Ray's workers inherit this environment: they import this runstack and bench.
    src = str(Path(runstack.__file__).resolve().parents[1])
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(x for x in (src, str(ROOT), old) if x)
    try:
        t0 = time.perf_counter()
        ray.init(num_cpus=WORKERS, include_dashboard=False, log_to_driver=False)
        return ray, time.perf_counter() - t0
    finally:
        if old is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = old


def _stacks(repo: Any) -> dict[str, Any]:
    settings = {
        "parallel": ("parallel", {"max_workers": WORKERS, "mode": "process"}),
        "threads": ("parallel", {"max_workers": WORKERS, "mode": "thread"}),
        "ray": ("ray", {}),  # reuses the instance started above
    }
    for key, (flavor, values) in settings.items():
        repo.register_component("orchestrator", key, flavor, values)
        repo.register_stack(key, orchestrator=key, metadata_store="local", artifact_store="local")
    return {key: repo.get_stack(key) for key in ["default", *settings]}


def _bare_chain(submit: Any) -> int:
    x = submit(p.first)
    for _ in range(LENGTH - 1):
        x = submit(p.increment, x)
    return int(x)


def run(mode: Mode, backend: str = "sqlite", rebuild: bool = False) -> list[Figure]:
    repeats = max(3, mode.repeats // 2)
    ray, ray_start = _start_ray()
    _warm = ray.remote(_warm_up)
    try:
        with scratch("distributed") as tmp, using_repository(tmp) as repo:
            stacks = _stacks(repo)

            def fan(key: str) -> Any:
                return lambda: stacks[key].run_pipeline(
                    p.fanout_pipeline(), listener=quiet_listener
                )

            def chain(key: str) -> Any:
                pipe = p.linear_pipeline(LENGTH)
                return lambda: stacks[key].run_pipeline(pipe, listener=quiet_listener)

            first_ray = clock(fan("ray"))
            # Every one of Ray's 8 workers imports runstack and opens the stores once: run
            # until each has (a step sleeps 0.5 s, so 8 at once land on 8 workers).
            ray.get([_warm.remote() for _ in range(WORKERS)])
            fan("ray")()
            fan("parallel")()
            fan_s: dict[str, list[float]] = {"default": [], "parallel": [], "ray": []}
            for _ in range(repeats):
                for key, times in fan_s.items():
                    times.append(clock(fan(key)))

            noop = ray.remote(_call)
            forkserver = multiprocessing.get_context("forkserver")
            bare = {
                "threads": lambda: _with_pool(cf.ThreadPoolExecutor(WORKERS)),
                "parallel": lambda: _with_pool(cf.ProcessPoolExecutor(WORKERS, forkserver)),
                "ray": lambda: _bare_chain(lambda f, *a: ray.get(noop.remote(f, *a))),
            }
            chain_s: dict[str, tuple[list[float], list[float]]] = {}
            for key, baseline in bare.items():
                subject = chain(key)
                subject(), baseline()  # warm
                s, b = [], []
                for _ in range(repeats * 2):
                    b.append(clock(baseline))
                    s.append(clock(subject))
                chain_s[key] = (s, b)
    finally:
        ray.shutdown()

    local = median(fan_s["default"])
    figures = [
        Figure(
            "distributed",
            f"fan-out speed-up, {name}",
            local / median(fan_s[key]),
            "x",
            f"source -> 8 x sleep 0.5 s -> join on {name}",
            median(fan_s[key]),
            "the same pipeline on local",
            local,
            median(fan_s[key]) / local,
            fan_s[key],
            fan_s["default"],
            SPEEDUP,
            note,
        )
        for key, name, note in (
            ("parallel", f"parallel (processes, max_workers={WORKERS})", "pool started per run"),
            ("ray", f"ray (local instance, num_cpus={WORKERS})", "Ray already started, warm"),
        )
    ]
    figures.append(
        Figure(
            "distributed",
            "Ray start-up (not in the speed-up)",
            ray_start,
            "s",
            f"ray.init(num_cpus={WORKERS}); first fan-out run on Ray: {first_ray:.2f} s",
            ray_start,
            "-",
            None,
            None,
            [ray_start, first_ray],
            [],
            None,
            "the first run also starts Ray's worker processes",
        )
    )
    for key, name, engine, budget in (
        ("threads", "parallel (threads)", "ThreadPoolExecutor", PER_STEP),
        ("ray", "ray", "Ray task doing nothing", PER_STEP),
        ("parallel", "parallel (processes)", "ProcessPoolExecutor", None),
    ):
        s, b = chain_s[key]
        figures.append(
            Figure(
                "distributed",
                f"per-step overhead over the bare engine, {name}",
                (median(s) - median(b)) / LENGTH * 1e3,
                "ms",
                f"{LENGTH}-step chain on {name}",
                median(s),
                f"{LENGTH} chained calls on a bare {engine}",
                median(b),
                median(s) / median(b),
                s,
                b,
                budget,
                "(runstack - bare) / 20; cache off, SQLite store; pools made per run in both",
            )
        )
    return figures


def _with_pool(pool: cf.Executor) -> int:
    with pool:
        return _bare_chain(lambda f, *a: pool.submit(f, *a).result())


def _call(f: Any, *args: Any) -> Any:
    return f(*args)


def _warm_up() -> None:
    import runstack.execution._ray  # noqa: F401

    time.sleep(0.5)
