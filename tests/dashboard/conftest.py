"""Dashboard fixtures: a recorded history on SQLite or PostgreSQL, and an ASGI client over it.

PostgreSQL gets a fresh database per test on the server the conformance suite uses
(``RUNSTACK_TEST_POSTGRESQL_URL``); an unreachable server fails the test, never skips it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from dashboard_support import POSTGRESQL, Server, client_for
from fastapi.testclient import TestClient

from runstack.repository import Repository
from runstack.stack import _flavors


def _dispose() -> None:
    for store in _flavors._stores.values():
        store.dispose()
    _flavors._stores.clear()


@pytest.fixture(params=["sqlite", "postgresql"])
def backend_repo(request: pytest.FixtureRequest, repo: Repository) -> Iterator[Repository]:
    """The test's repository, its active stack on a fresh store of each kind, with history."""
    from dashboard_history import record

    if request.param == "sqlite":
        record(repo)
        yield repo
        return
    admin = sa.create_engine(POSTGRESQL, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
    name = f"rs_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    try:
        url = sa.make_url(POSTGRESQL).set(database=name).render_as_string(hide_password=False)
        repo.register_component("metadata_store", "team-db", "postgresql", {"url": url})
        repo.register_stack(
            "team",
            orchestrator="local",
            metadata_store="team-db",
            artifact_store="local",
            activate=True,
        )
        record(repo)
        yield repo
    finally:
        _dispose()
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE {name} WITH (FORCE)")
        admin.dispose()


@pytest.fixture
def sqlite_repo(repo: Repository) -> Repository:
    from dashboard_history import record

    record(repo)
    return repo


@pytest.fixture
def client(backend_repo: Repository) -> Iterator[TestClient]:
    c, source = client_for(backend_repo)
    with c:
        yield c
    source.store.dispose()


@pytest.fixture
def serve(sqlite_repo: Repository) -> Iterator[Any]:
    """Start ``runstack up`` in the test's repository: ``serve(*args, env=...)`` -> Server."""
    started: list[Server] = []
    _dispose()  # the history is written; the server reads it from another process

    def start(*args: str, env: dict[str, str] | None = None) -> Server:
        server = Server(sqlite_repo.root, *args, env=env)
        started.append(server)
        return server

    yield start
    for server in started:
        if server.proc.poll() is None:
            server.proc.kill()
            server.proc.wait()
