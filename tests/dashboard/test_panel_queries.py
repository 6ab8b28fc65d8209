"""The step panel loads its step once: logs and output previews reuse that load."""

from __future__ import annotations

from typing import Any

from runstack.repository import Repository


def _queries(source: Any, fn: Any) -> int:
    import sqlalchemy as sa

    seen: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if not statement.lstrip().upper().startswith("BEGIN"):
            seen.append(statement)

    sa.event.listen(source.store.engine, "before_cursor_execute", count)
    source.store.statement_hooks.append(seen.append)  # the reads sent through the DB-API
    try:
        fn()
    finally:
        source.store.statement_hooks.remove(seen.append)
        sa.event.remove(source.store.engine, "before_cursor_execute", count)
    return len(seen)


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
