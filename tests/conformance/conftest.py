"""Backends for the conformance suite: every test runs once per database, each in its own.

SQLite gets a file in the test's folder; PostgreSQL and MariaDB/MySQL (through PyMySQL, backend
"mysql", and through mysqlclient, backend "mysqlclient") get a fresh database
(``rs_<random>``) created on the server for the test and dropped after it. The servers are
taken from ``RUNSTACK_TEST_POSTGRESQL_URL`` / ``RUNSTACK_TEST_MYSQL_URL`` (defaults in
conformance_support.py; the database in the URL is only used to connect for CREATE/DROP
DATABASE). An unreachable server fails the tests, it never skips them: CI must not pass
without having run them.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from conformance_support import BACKENDS, FLAVORS, SERVERS, Backend

from runstack.metadata_stores import SQLMetadataStore
from runstack.repository import Repository
from runstack.stack import _flavors

_admins: dict[str, sa.Engine] = {}
_unreachable: dict[str, str] = {}  # tried once per session: later tests fail at once


def _admin(flavor: str) -> sa.Engine:
    """An engine on the server's maintenance database; fails the test if it is unreachable."""
    if flavor not in _admins:
        url = sa.make_url(SERVERS[flavor])
        engine = sa.create_engine(
            url,
            isolation_level="AUTOCOMMIT",
            poolclass=sa.NullPool,
            connect_args={"connect_timeout": 10},
        )
        problem = _unreachable.get(flavor)
        try:
            if problem is None:
                with engine.connect() as conn:
                    conn.exec_driver_sql("SELECT 1")
        except sa.exc.DBAPIError as e:
            problem = _unreachable[flavor] = str(e.orig).strip()
        if problem is not None:
            pytest.fail(
                f"The {flavor} server for the conformance suite is unreachable at "
                f"{url.render_as_string(hide_password=True)}: {problem}. Start it, or point "
                f"RUNSTACK_TEST_{flavor.upper()}_URL at one. These tests never skip.",
                pytrace=False,
            )
        _admins[flavor] = engine
    return _admins[flavor]


def _dispose_stores() -> None:
    for store in _flavors._stores.values():
        store.dispose()
    _flavors._stores.clear()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, isolated: Path) -> Iterator[Backend]:
    """A fresh, empty database of each kind (no schema yet)."""
    flavor = FLAVORS.get(request.param, request.param)
    if flavor == "sqlite":
        yield Backend("sqlite", f"sqlite:///{isolated / 'team-metadata.db'}")
        _dispose_stores()
        return
    admin = _admin(flavor)
    name = f"rs_{uuid.uuid4().hex[:12]}"
    create = f"CREATE DATABASE {name}"
    with admin.connect() as conn:
        conn.exec_driver_sql(create + (" CHARACTER SET utf8mb4" if flavor == "mysql" else ""))
    try:
        yield Backend(
            flavor,
            sa.make_url(SERVERS[request.param])
            .set(database=name)
            .render_as_string(hide_password=False),
        )
    finally:
        _dispose_stores()
        with admin.connect() as conn:
            conn.exec_driver_sql(
                f"DROP DATABASE {name}" + (" WITH (FORCE)" if flavor == "postgresql" else "")
            )


@pytest.fixture
def team(repo: Repository, backend: Backend) -> Repository:
    """The test's repository with an active stack ``team`` whose metadata store is ``backend``."""
    repo.register_component("metadata_store", "team-db", backend.flavor, backend.settings)
    repo.register_stack(
        "team",
        orchestrator="local",
        metadata_store="team-db",
        artifact_store="local",
        activate=True,
    )
    return repo


@pytest.fixture
def store(team: Repository) -> SQLMetadataStore:
    """The metadata store of the active ``team`` stack (opened, so its schema exists)."""
    return team.active_stack.metadata_store
