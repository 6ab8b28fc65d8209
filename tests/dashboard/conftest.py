"""Dashboard fixtures: a recorded history on SQLite or PostgreSQL, and an ASGI client over it.

PostgreSQL gets a fresh database per test on the server the conformance suite uses
(``RUNSTACK_TEST_POSTGRESQL_URL``); an unreachable server fails the test, never skips it.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from runstack.dashboard import create_app, open_source
from runstack.dashboard._data import Source
from runstack.repository import Repository
from runstack.stack import _flavors

POSTGRESQL = os.environ.get(
    "RUNSTACK_TEST_POSTGRESQL_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


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


def client_for(repo: Repository, **kwargs: Any) -> tuple[TestClient, Source]:
    source = open_source(repo)
    return TestClient(create_app(source, **kwargs), raise_server_exceptions=False), source


@pytest.fixture
def client(backend_repo: Repository) -> Iterator[TestClient]:
    c, source = client_for(backend_repo)
    with c:
        yield c
    source.store.dispose()


def db_file(repo: Repository) -> Path:
    return repo.config_dir / "metadata.db"


class Server:
    """``runstack up`` running as a subprocess; ``lines`` is what it printed before serving."""

    def __init__(self, cwd: Path, *args: str, env: dict[str, str] | None = None) -> None:
        import subprocess
        import sys

        full_env = {**os.environ, **(env or {})}
        full_env.setdefault("PYTHONUNBUFFERED", "1")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "runstack.cli", "up", "--port", "0", *args],
            cwd=cwd,
            env=full_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))
            if line.startswith("Press Ctrl-C"):
                break
        else:
            raise AssertionError(f"runstack up exited: {self.lines}")
        self.url = next(w for line in self.lines for w in line.split() if w.startswith("http"))
        self.base = self.url.split("?")[0].rstrip("/")

    def stop(self) -> tuple[int, str]:
        """Ctrl-C; the exit status and what it printed after serving."""
        import signal

        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        out, _ = self.proc.communicate(timeout=30)
        return self.proc.returncode, out


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
