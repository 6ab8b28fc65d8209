"""The step panel loads its step once: logs and output previews reuse that load."""

from __future__ import annotations

from typing import Any

from runstack.repository import Repository
from store_support import StatementCounter


def _queries(source: Any, fn: Any) -> int:
    with StatementCounter(source.store) as counter:
        fn()
    return counter.queries


def test_the_step_panel_costs_what_the_step_costs(sqlite_repo: Repository) -> None:
    from dashboard_support import client_for

    client, source = client_for(sqlite_repo)
    for step in ("load", "train"):
        url = f"/runs/r-2/steps/{step}"
        assert client.get(f"{url}/panel").status_code == 200
        panel = _queries(source, lambda u=url: client.get(f"{u}/panel"))
        alone = _queries(source, lambda u=url: client.get(f"/api{u}"))
        # Before, each output and the logs looked the run and step up again (15 and 24).
        assert panel == alone, (step, panel, alone)
    source.store.dispose()
