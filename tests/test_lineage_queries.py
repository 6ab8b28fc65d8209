"""Lineage costs a constant number of SQL statements, whatever the number of runs."""

from __future__ import annotations

import sys
from pathlib import Path

from runstack.repository import Repository
from store_support import StatementCounter

sys.path.insert(0, str(Path(__file__).parent / "conformance"))
from test_lineage import _run


def _costs(repo: Repository) -> list[int]:
    p = repo.get_pipeline("lineage_pipeline")
    first, last = p.get_run(p.get_run_names()[0]), p.latest_run
    data, weight = first.get_step("load").output, first.get_step("train").output
    costs = []
    for ask in (
        lambda: [s.run.name for s in data.consumers],
        lambda: [s.run.name for s in weight.reused_by],
        lambda: [r.name for r in last.upstream_runs],
        data.lineage,
        weight.lineage,
    ):
        with StatementCounter(repo.active_stack.metadata_store) as counter:
            ask()
        costs.append(counter.queries)
    return costs


def test_lineage_queries_do_not_grow_with_history(repo: Repository) -> None:
    for i in range(3):
        _run(f"small-{i}")
    small = _costs(repo)
    for i in range(30):
        _run(f"big-{i}")
    assert _costs(repo) == small
    assert small[:3] == [2, 2, 1]
    assert max(small) <= 20, small
