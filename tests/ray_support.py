"""A real local Ray instance for the tests (one per session, 2 CPUs), and helpers.

Loaded as a pytest plugin by ``tests/conftest.py``: ask for ``ray_address``. Ray's processes
inherit ``PYTHONPATH`` from here, so its workers import this checkout's runstack and the
tests' modules; two workers are started (runstack imported) before the first test.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

import runstack
from runstack.repository import Repository

TESTS = Path(__file__).resolve().parent
SRC = Path(runstack.__file__).resolve().parents[1]


def _warm_up() -> None:
    import runstack.execution._ray  # noqa: F401

    time.sleep(0.5)


@pytest.fixture(scope="session")
def ray_address() -> Iterator[str]:
    """The address of a local Ray instance (``ray.init(num_cpus=2)``) kept for the session."""
    import ray

    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(SRC), str(TESTS), old) if p)
    try:
        context = ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    finally:
        if old is None:
            del os.environ["PYTHONPATH"]
        else:
            os.environ["PYTHONPATH"] = old
    # Start both workers now, with runstack imported: a step that waits for a cold worker
    # would blur the overlap the tests look for.
    warm = ray.remote(_warm_up)
    ray.get([warm.options(num_cpus=1).remote() for _ in range(2)])
    try:
        yield context.address_info["address"]
    finally:
        ray.shutdown()


def use_ray(repo: Repository, artifact_store: str = "local", **settings: object) -> None:
    """Register a ray orchestrator with ``settings`` and make a stack of it active."""
    repo.register_component("orchestrator", "ray", "ray", dict(settings))
    repo.register_stack(
        "ray",
        orchestrator="ray",
        metadata_store="local",
        artifact_store=artifact_store,
        activate=True,
    )


def recorded(run_name: str) -> Any:
    """A run of the active stack, as recorded."""
    return Repository().active_stack.history.get_run(run_name)


def ran(step_view: Any) -> tuple[datetime, datetime]:
    """When the step's (last) attempt ran on its worker."""
    last = step_view.attempts[-1]
    return datetime.fromisoformat(last["start_time"]), datetime.fromisoformat(last["end_time"])
