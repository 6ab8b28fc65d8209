"""The store keeps what a run did, on every backend (issue 11 items 4, 5, 6, 10).

NaN and infinite parameters, names the columns cannot hold, an upgrade interrupted half-way,
and browsing with credentials that may only read.
"""

from __future__ import annotations

import math
import subprocess
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from conformance_support import Backend
from test_migrations import _check_upgraded_history, _use_store, schema_0001

from runstack.exceptions import DefinitionError
from runstack.metadata_stores import SQLMetadataStore, _liveness
from runstack.metadata_stores._names import MAX_NAME_LENGTH
from runstack.metadata_stores.migrations import _ops
from runstack.models import ExecutionStatus
from runstack.pipelines import pipeline
from runstack.repository import Repository
from runstack.steps import BaseStepConfig, Output, step

# -- item 4: NaN and infinities ------------------------------------------------------------


class Clip(BaseStepConfig):
    max_grad_norm: float = math.inf
    floor: float = -math.inf
    missing: float = math.nan
    schedule: list[float] = [1.0, math.inf]


@step
def clipped(config: Clip) -> float:
    return config.max_grad_norm


@pipeline
def clipping(s):
    s()


def test_nan_and_infinite_parameters_are_kept_on_every_backend(
    team: Repository, store: SQLMetadataStore
) -> None:
    clipping(s=clipped()).run(run_name="inf-run")
    run = team.get_pipeline("clipping").get_run("inf-run")
    assert run.status is ExecutionStatus.COMPLETED
    step_view = run.get_step("s")
    p = step_view.parameters
    assert p["max_grad_norm"] == math.inf and p["floor"] == -math.inf
    assert math.isnan(p["missing"]) and p["schedule"] == [1.0, math.inf]
    assert step_view.output.read() == math.inf
    # Listings decode the same way, and filters find the value.
    assert team.get_pipeline("clipping").runs[0].steps[0].parameters["floor"] == -math.inf
    found = team.get_pipeline("clipping").get_runs(parameters={"s.max_grad_norm": math.inf})
    assert [r.name for r in found] == ["inf-run"]
    # A second run with the same config is a cache hit (the key's components round-trip).
    clipping(s=clipped()).run(run_name="inf-again")
    assert team.get_pipeline("clipping").get_run("inf-again").get_step("s").is_cached


# -- item 5: names ---------------------------------------------------------------------------


def _pipeline_named(name: str, s: Any) -> Any:
    scope: dict[str, Any] = {}
    exec(f"def {name}(s):\n    s()\n", scope)
    return pipeline(scope[name])(s=s)


ran: list[str] = []


@step
def marks() -> int:
    ran.append("ran")
    return 1


def test_a_164_character_pipeline_gets_a_generated_run_name_that_fits(
    team: Repository, store: SQLMetadataStore
) -> None:
    name = "p" * 164
    run = _pipeline_named(name, marks()).run()
    assert len(run.name) <= MAX_NAME_LENGTH and run.name.startswith("p" * 100)
    assert team.get_pipeline(name).get_run(run.name).status is ExecutionStatus.COMPLETED


@pytest.mark.parametrize(
    ("what", "make"),
    [
        ("pipeline", lambda: _pipeline_named("p" * 191, marks()).run()),
        ("run", lambda: _pipeline_named("short", marks()).run(run_name="r" * 191)),
        ("run", lambda: _pipeline_named("short", marks()).run(run_name="bad\x00name")),
        ("output", lambda: _pipeline_named("short", _long_output()()).run()),
        ("step", lambda: _pipeline_named("short", _long_step()()).run()),
    ],
)
def test_names_the_store_cannot_keep_fail_before_anything_runs(
    team: Repository, store: SQLMetadataStore, what: str, make: Any
) -> None:
    ran.clear()
    with pytest.raises(DefinitionError) as e:
        make()
    message = str(e.value)
    assert what in message
    assert f"at most {MAX_NAME_LENGTH} characters" in message or "NUL" in message
    assert ran == []
    assert store.list_runs() == []  # nothing recorded, nothing half-done


def _long_output() -> Any:
    @step
    def wide() -> Output(**{"o" * 191: int}):  # type: ignore[valid-type]
        ran.append("ran")
        return 1

    return wide


def _long_step() -> Any:
    def f() -> int:
        ran.append("ran")
        return 1

    f.__name__ = f.__qualname__ = "s" * 191
    return step(f)


# -- item 6: an upgrade interrupted half-way -------------------------------------------------


def _partial_0002_and_0003(url: str) -> None:
    """What an interrupted 0002 (and a started 0003) leave behind on MySQL: DDL done,
    alembic_version still 0001."""
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE INDEX ix_runs_start_time ON runs (start_time)"))
            conn.execute(
                sa.text(
                    "CREATE INDEX ix_runs_pipeline_id_status_start_time "
                    "ON runs (pipeline_id, status, start_time)"
                )
            )
            conn.execute(
                sa.text("CREATE INDEX ix_steps_cache_key_status ON steps (cache_key, status)")
            )
            params = sa.Table(
                "step_parameters",
                sa.MetaData(),
                sa.Column("step_id", sa.Integer, sa.ForeignKey("steps.id"), primary_key=True),
                sa.Column("name", sa.String(190), primary_key=True),
                sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id"), nullable=False),
                sa.Column("step_name", sa.String(190), nullable=False),
                sa.Column("value", sa.String(255), nullable=False),
                mysql_engine="InnoDB",
                mysql_charset="utf8mb4",
            )
            sa.Table("steps", params.metadata, autoload_with=conn)
            sa.Table("runs", params.metadata, autoload_with=conn)
            params.create(conn)
            version = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
            assert version == "0001"
    finally:
        engine.dispose()


def test_an_upgrade_interrupted_after_part_of_its_ddl_finishes_on_reopen(
    repo: Repository, backend: Backend, capfd: pytest.CaptureFixture[str]
) -> None:
    schema_0001.create_at_0001(backend.url)
    _partial_0002_and_0003(backend.url)
    _ops.LARGE_STORE_STEPS = 0  # report the back-fill's progress even for this small store
    try:
        _use_store(repo, backend.flavor, backend.settings)
        _check_upgraded_history(repo)
    finally:
        _ops.LARGE_STORE_STEPS = 20_000
    err = capfd.readouterr().err
    assert "upgrading the metadata store" in err and "from schema revision 0001" in err
    assert "back-filling step parameters of 4 steps" in err and "4 of 4 steps" in err


_UPGRADE_THEN_HANG = """
import sys, time
from runstack.metadata_stores import SQLMetadataStore
from runstack.metadata_stores.migrations import _ops

def progress(message):  # the upgrade hangs at its first progress report: the kill lands there
    print(message, file=sys.stderr, flush=True)
    if "back-filling" in message:
        time.sleep(120)

_ops.progress = progress
_ops.LARGE_STORE_STEPS = 0
SQLMetadataStore(sys.argv[1])
"""


@pytest.mark.slow
def test_an_upgrade_killed_during_its_back_fill_finishes_on_reopen(
    repo: Repository, backend: Backend
) -> None:
    """A real process upgrading the store is killed (SIGKILL) half-way through 0002: after
    its DDL (committed on MySQL/MariaDB, rolled back on PostgreSQL and SQLite), before
    alembic_version moves. Opening the store again finishes the upgrade."""
    import os
    import signal
    import sys
    import time

    schema_0001.create_at_0001(backend.url)
    proc = subprocess.Popen(
        [sys.executable, "-c", _UPGRADE_THEN_HANG, backend.url],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    seen = []
    deadline = time.monotonic() + 120
    assert proc.stderr is not None
    for line in proc.stderr:
        seen.append(line)
        if "back-filling" in line or time.monotonic() > deadline:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    proc.stderr.close()
    assert any("back-filling step parameters" in line for line in seen), "".join(seen)
    engine = sa.create_engine(backend.url, poolclass=sa.NullPool)
    try:
        with engine.connect() as conn:
            version = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
            indexes = {ix["name"] for ix in sa.inspect(conn).get_indexes("runs")}
    finally:
        engine.dispose()
    assert version == "0001"  # interrupted: the upgrade did not record itself
    if backend.flavor == "mysql":  # non-transactional DDL: the kill left part of it behind
        assert "ix_runs_start_time" in indexes
    _use_store(repo, backend.flavor, backend.settings)
    _check_upgraded_history(repo)


# -- item 10: read-only credentials browse, crashed runs included ----------------------------


@pytest.fixture
def read_only_url(backend: Backend, store: SQLMetadataStore) -> Iterator[str]:
    """A URL for a user that may only SELECT from the test's database (schema created);
    server backends only."""
    user = f"ro_{uuid.uuid4().hex[:8]}"
    url = sa.make_url(backend.url)
    admin = sa.create_engine(url, poolclass=sa.NullPool, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        if backend.flavor == "postgresql":
            conn.exec_driver_sql(f"CREATE ROLE {user} LOGIN")
            conn.exec_driver_sql(f"GRANT CONNECT ON DATABASE {url.database} TO {user}")
            conn.exec_driver_sql(f"GRANT USAGE ON SCHEMA public TO {user}")
            conn.exec_driver_sql(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {user}")
        else:
            conn.exec_driver_sql(f"CREATE USER '{user}'@'%%' IDENTIFIED BY ''")
            conn.exec_driver_sql(f"GRANT SELECT ON {url.database}.* TO '{user}'@'%%'")
    try:
        yield url.set(username=user, password=None).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            if backend.flavor == "postgresql":
                conn.exec_driver_sql(f"DROP OWNED BY {user}")
                conn.exec_driver_sql(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    f"WHERE usename = '{user}'"
                )
                conn.exec_driver_sql(f"DROP ROLE {user}")
            else:
                conn.exec_driver_sql(f"DROP USER '{user}'@'%%'")
        admin.dispose()


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


# SQLite has no users: its read-only case is a read-only file (tests/test_store_files.py).
@pytest.mark.parametrize("backend", ["postgresql", "mysql", "mysqlclient"], indirect=True)
def test_read_only_credentials_browse_a_store_with_a_crashed_run(
    team: Repository, store: SQLMetadataStore, backend: Backend, read_only_url: str
) -> None:
    from runstack.cli import main

    clipping(s=clipped()).run(run_name="finished")
    started = datetime.now(timezone.utc) - timedelta(hours=1)
    store.create_run(
        "clipping",
        "killed",
        started,
        owner_host=_liveness.this_host(),
        owner_pid=_dead_pid(),
        owner_ns=_liveness.this_namespace(),
    )
    team.register_component("metadata_store", "ro-db", backend.flavor, {"url": read_only_url})
    team.register_stack("ro", orchestrator="local", metadata_store="ro-db", artifact_store="local")
    cli = CliRunner()
    for args in (["pipeline", "list"], ["run", "list"], ["run", "list", "--json"]):
        result = cli.invoke(main, ["-R", str(team.root), *args, "--stack", "ro"])
        assert result.exit_code == 0, result.output
        assert "failed" in result.output or args == ["pipeline", "list"]
    killed = Repository(team.root).get_pipeline("clipping", stack_key="ro").get_run("killed")
    assert killed.status is ExecutionStatus.FAILED and "crashed" in killed.error
    assert killed.end_time == started  # last seen alive (its only heartbeat), not "now"
    assert store.get_run("killed").status is ExecutionStatus.RUNNING  # nothing was written

    # Recording the crash needs write access: the read-only user gets a clear error...
    result = cli.invoke(main, ["-R", str(team.root), "run", "reconcile", "--stack", "ro"])
    assert result.exit_code == 1
    assert "not allowed" in result.output and "SELECT" in result.output
    # ...and the owner's credentials record it, ending when it was last seen.
    result = cli.invoke(main, ["-R", str(team.root), "run", "reconcile", "--stack", "team"])
    assert result.exit_code == 0 and "Marked run 'killed'" in result.output
    recorded = store.get_run("killed")
    assert recorded.status is ExecutionStatus.FAILED and recorded.end_time == started
