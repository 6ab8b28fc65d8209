"""Browsing is read-only by construction: the store's file is byte-for-byte unchanged, and
the connections the dashboard holds refuse writes (SQLite and PostgreSQL)."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from dashboard_support import client_for, db_file
from fastapi.testclient import TestClient

from runstack.dashboard import open_source
from runstack.exceptions import StoreError
from runstack.models import ExecutionStatus
from runstack.repository import Repository
from runstack.stack import _flavors


def _sha(repo: Repository) -> str:
    return hashlib.sha256(db_file(repo).read_bytes()).hexdigest()


def browse_everything(client: TestClient) -> int:
    """Every page and API route over every pipeline, run, step and output; returns the count."""
    urls = ["/", "/api/pipelines", "/api/openapi.json"]
    for p in client.get("/api/pipelines").json():
        base = f"/api/pipelines/{p['name']}/runs"
        urls += [f"/pipelines/{p['name']}", f"/pipelines/{p['name']}?status=failed", base]
        urls += [f"{base}?status=running", f"{base}?limit=1&offset=2&newest_first=false"]
        names = [r["name"] for r in client.get(base, params={"limit": 500}).json()["runs"]]
        urls.append("/compare?" + "&".join(f"run={n}" for n in names[:4]))
        for name in names:
            run = client.get(f"/api/runs/{name}").json()
            urls += [f"/runs/{name}", f"/api/runs/{name}"]
            for s in run["steps"]:
                step = f"/runs/{name}/steps/{s['name']}"
                urls += [step, f"{step}/panel", f"/api{step}", f"/api{step}/logs"]
                for o in [*s["outputs"].values(), *s["inputs"].values()]:
                    urls += [f"/artifacts/{o['artifact_id']}", f"/api/artifacts/{o['artifact_id']}"]
                for o in s["outputs"]:
                    urls.append(f"/api{step}/outputs/{o}/preview")
        urls.append(f"/api/diff?a={names[0]}&b={names[-1]}")
    for url in urls:
        r = client.get(url)
        assert r.status_code == 200, (url, r.status_code, r.text[:300])
    return len(urls)


def _crashed_run(repo: Repository) -> None:
    """A run left "running" by a process on another host that stopped beating an hour ago."""
    store = repo.active_stack.metadata_store
    store.create_run(
        "train_pipeline",
        "r-crashed",
        datetime.now(timezone.utc) - timedelta(hours=1),
        owner_host="another-host",
        owner_pid=4242,
    )


def test_browsing_everything_leaves_the_sqlite_file_unchanged(sqlite_repo: Repository) -> None:
    _crashed_run(sqlite_repo)
    for store in _flavors._stores.values():
        store.dispose()  # the writer is done: the store is one self-contained file at rest
    _flavors._stores.clear()
    before = _sha(sqlite_repo)
    client, source = client_for(sqlite_repo)
    with client:
        assert browse_everything(client) > 60
        # A crashed run reads as failed, but nothing records it: that is `run reconcile`'s job.
        crashed = client.get("/api/runs/r-crashed").json()
        assert crashed["status"] == "failed" and "no heartbeat" in crashed["error"]
        [pipeline] = client.get("/api/pipelines").json()
        assert pipeline["recent"][0] == {"name": "r-crashed", "status": "failed", "duration": 0.0}
    source.store.dispose()
    assert _sha(sqlite_repo) == before
    engine = sa.create_engine(f"sqlite:///{db_file(sqlite_repo)}", poolclass=sa.NullPool)
    with engine.connect() as conn:
        status = conn.execute(sa.text("SELECT status FROM runs WHERE name = 'r-crashed'"))
        assert status.scalar() == ExecutionStatus.RUNNING.value


def test_the_dashboards_connections_refuse_writes(backend_repo: Repository) -> None:
    source = open_source(backend_repo)
    try:
        with pytest.raises(StoreError):
            source.store.finish_run(1, ExecutionStatus.FAILED, datetime.now(timezone.utc))
        with (
            pytest.raises(sa.exc.DBAPIError, match="(?i)read.only|readonly"),
            source.store.engine.begin() as conn,
        ):
            conn.execute(sa.text("UPDATE runs SET status = 'failed'"))
        assert source.history.get_run("r-1").status is ExecutionStatus.COMPLETED
    finally:
        source.store.dispose()


def test_a_missing_sqlite_store_is_an_error_and_is_not_created(repo: Repository) -> None:
    with pytest.raises(StoreError, match="There is no SQLite metadata store at .*Run a pipeline"):
        open_source(repo)
    assert not db_file(repo).exists()


@pytest.mark.parametrize("driver", ["mysql+pymysql", "mysql+mysqldb"])
def test_mysql_sessions_are_read_only_too(repo: Repository, driver: str) -> None:
    import os
    import uuid

    from runstack.metadata_stores import SQLMetadataStore
    from runstack.metadata_stores._read_only import open_read_only

    server = os.environ.get("RUNSTACK_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/test")
    server = sa.make_url(server).set(drivername=driver).render_as_string(hide_password=False)
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
    name = f"rs_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name} CHARACTER SET utf8mb4")
    try:
        url = sa.make_url(server).set(database=name)
        writer = SQLMetadataStore(url)  # creates the schema
        writer.create_run("p", "r-1", datetime.now(timezone.utc))
        writer.dispose()
        store = open_read_only(url)
        try:
            assert store.get_run("r-1") is not None and store.url.drivername == driver
            with pytest.raises(sa.exc.DBAPIError, match="(?i)read.only"), store.engine.begin() as c:
                c.execute(sa.text("UPDATE runs SET status = 'failed'"))
        finally:
            store.dispose()
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE {name}")
        admin.dispose()


def test_a_select_only_postgresql_role_browses_everything(repo: Repository) -> None:
    """What docs/dashboard.md tells teams to do: a role that can only SELECT."""
    import uuid

    from dashboard_history import record
    from dashboard_support import POSTGRESQL

    from runstack.dashboard import create_app

    admin = sa.create_engine(POSTGRESQL, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
    name = f"rs_{uuid.uuid4().hex[:12]}"
    viewer = f"{name}_viewer"
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
        conn.exec_driver_sql(f"CREATE ROLE {viewer} LOGIN")
    url = sa.make_url(POSTGRESQL).set(database=name)
    try:
        repo.register_component(
            "metadata_store", "team-db", "postgresql", {"url": url.render_as_string(False)}
        )
        repo.register_stack(
            "team",
            orchestrator="local",
            metadata_store="team-db",
            artifact_store="local",
            activate=True,
        )
        record(repo)
        owner = sa.create_engine(url, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
        with owner.connect() as conn:
            conn.exec_driver_sql(f"GRANT USAGE ON SCHEMA public TO {viewer}")
            conn.exec_driver_sql(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {viewer}")
        view_url = url.set(username=viewer).render_as_string(False)
        repo.register_component("metadata_store", "team-view", "postgresql", {"url": view_url})
        repo.register_stack(
            "team-view", orchestrator="local", metadata_store="team-view", artifact_store="local"
        )
        source = open_source(repo, "team-view")
        try:
            with TestClient(create_app(source)) as client:
                assert browse_everything(client) > 60
        finally:
            source.store.dispose()
    finally:
        for store in _flavors._stores.values():
            store.dispose()
        _flavors._stores.clear()
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE {name} WITH (FORCE)")
            conn.exec_driver_sql(f"DROP ROLE {viewer}")
        admin.dispose()
