"""Fixtures for the pictures' tests; the pipelines they run are in viz_runs."""

from __future__ import annotations

import pytest
from viz_runs import ExplodingMaterializer, run_training

from runstack.post_execution import RunView
from runstack.repository import Repository


@pytest.fixture
def first_run(repo: Repository) -> RunView:
    ExplodingMaterializer.reads = 0
    return run_training(0.1, name="first")
