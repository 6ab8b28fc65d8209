"""Recorded histories of N runs of the seed pipeline, made by really running it N times.

Each run is the seed's ``first_pipeline`` (same pipeline, slots, outputs and materializers)
with ``step_3`` swapped for one that does not scan history, so building N runs costs N runs
rather than N^2/2 scans. Runs go through ``launch`` with a plan made once (the same
StepRunner and store writes as ``pipeline.run()``, without re-reading the config each run).

SQLite stores are kept under ``bench/results/stores/`` and reused by later sessions while
runstack's schema revision and this builder's version are unchanged (the artifact URIs
recorded in them are absolute, so they stay where they were built). Server databases are
made fresh for each session and dropped after it.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

from bench import _pipelines as p
from bench._core import RESULTS_DIR, quiet_listener

BUILDER_VERSION = 1  # bump when what a stored run holds changes without a schema change
SERVERS = {
    "postgresql": "postgresql+psycopg://postgres@127.0.0.1:5432/{db}",
    "mysql": "mysql+pymysql://root@127.0.0.1:3306/{db}",
}
ADMIN_DB = "test"


def _schema_revision() -> str:
    from runstack.metadata_stores import _schema

    return str(_schema.SCHEMA_REVISION)


def record_runs(repo: Any, count: int, label: str) -> None:
    """Run the (blind) seed pipeline ``count`` times on the repository's active stack."""
    from runstack.execution import launch, make_plan

    stack = repo.active_stack
    plan = make_plan(p.seed_pipeline_blind())
    t0 = time.perf_counter()
    for i in range(count):
        launch(
            plan,
            orchestrator=stack.orchestrator,
            metadata_store=stack.metadata_store,
            artifact_store=stack.artifact_store,
            history=stack.history,
            listener=quiet_listener,
        )
        if (i + 1) % 1000 == 0 or i + 1 == count:
            rate = (i + 1) / (time.perf_counter() - t0)
            print(
                f"[bench]   {label}: {i + 1}/{count} runs recorded ({rate:.0f} runs/s)",
                file=sys.stderr,
                flush=True,
            )


def _run_count(repo: Any) -> int:
    try:
        return len(repo.get_pipeline("first_pipeline").get_run_names())
    except KeyError:
        return 0


@contextlib.contextmanager
def sqlite_history(n: int, rebuild: bool = False) -> Iterator[Any]:
    """A repository whose default SQLite stack holds ``n`` runs of the seed pipeline."""
    from bench._core import environ
    from runstack.repository import Repository

    where = RESULTS_DIR / "stores" / f"sqlite-schema{_schema_revision()}-b{BUILDER_VERSION}-n{n}"
    marker = where / "complete.json"
    with environ(RUNSTACK_REPOSITORY=str(where)):
        if marker.exists() and not rebuild:
            repo = Repository(where)
            if _run_count(repo) == n:
                yield repo
                return
        shutil.rmtree(where, ignore_errors=True)
        where.mkdir(parents=True)
        repo = Repository.init(where)
        t0 = time.perf_counter()
        record_runs(repo, n, f"sqlite store of {n} runs")
        marker.write_text(
            json.dumps({"runs": n, "build_s": round(time.perf_counter() - t0, 1)}) + "\n"
        )
        yield repo


@contextlib.contextmanager
def server_history(backend: str, sizes: tuple[int, ...]) -> Iterator[Any]:
    """A fresh database on the server, grown to each of ``sizes`` runs in turn; dropped after.

    Yields a function ``grow(n)`` returning a repository whose active stack holds ``n`` runs.
    """
    import sqlalchemy as sa

    from bench._core import environ, scratch
    from runstack.repository import Repository

    db = f"runstack_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(SERVERS[backend].format(db=ADMIN_DB), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE {db}"))
    try:
        with scratch(f"history-{backend}") as tmp, environ(RUNSTACK_REPOSITORY=str(tmp)):
            repo = Repository.init(tmp)
            repo.register_component(
                "metadata_store", "bench", backend, {"url": SERVERS[backend].format(db=db)}
            )
            repo.register_stack(
                "bench",
                orchestrator="local",
                metadata_store="bench",
                artifact_store="local",
                activate=True,
            )
            have = 0

            def grow(n: int) -> Any:
                nonlocal have
                record_runs(repo, n - have, f"{backend} store, {have} -> {n} runs")
                have = n
                # Planner statistics, as autovacuum / InnoDB would have them on a live server.
                with repo.active_stack.metadata_store.engine.begin() as conn:
                    for table in ("pipelines", "runs", "steps", "artifacts", "step_outputs"):
                        conn.execute(
                            sa.text(f"ANALYZE {'' if backend == 'postgresql' else 'TABLE '}{table}")
                        )
                return repo

            yield grow
    finally:
        _drop(admin, backend, db)


def _drop(admin: Any, backend: str, db: str) -> None:
    """Drop the session's database; its pooled connections are closed first."""
    import sqlalchemy as sa

    from runstack.stack import _flavors

    for store in list(_flavors._stores.values()):  # one engine per URL per process
        if db in str(store.url):
            store.dispose()
    force = " WITH (FORCE)" if backend == "postgresql" else ""
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS {db}{force}"))
    except sa.exc.DBAPIError as e:
        print(f"[bench] could not drop database {db}: {e.orig}", file=sys.stderr)
    finally:
        admin.dispose()
