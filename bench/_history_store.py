"""Recorded histories of N runs of the seed pipeline.

Up to ``REAL_RUNS`` runs are made by really running the pipeline: the seed's
``first_pipeline`` (same pipeline, slots, outputs and materializers) with ``step_3`` swapped
for one that does not scan history, so building N runs costs N runs rather than N^2/2 scans.
Runs go through ``launch`` with a plan made once (the same StepRunner and store writes as
``pipeline.run()``, without re-reading the config each run). Beyond that, runs are bulk
inserted as copies of the last real run's rows (runs, steps, parameters, artifacts, links:
real-shaped records, each run with its own step_2 value and content hash): 100,000 real runs
would take hours here, copies take a minute.

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
from datetime import timedelta
from typing import Any

from bench import _pipelines as p
from bench._core import RESULTS_DIR, quiet_listener

BUILDER_VERSION = 2  # bump when what a stored run holds changes without a schema change
REAL_RUNS = 1000  # runs made by running the pipeline; the rest are copies of the last one
# On a server each real run is several round trips (~2-30 runs/s here, by load): fewer.
SERVER_REAL_RUNS = 100
CLONE_BATCH = 2000  # copied runs per transaction
SERVERS = {
    "postgresql": "postgresql+psycopg://postgres@127.0.0.1:5432/{db}",
    # No driver named: mysqlclient when installed, else PyMySQL (as for a user's mysql:// URL).
    "mysql": "mysql://root@127.0.0.1:3306/{db}",
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


def build(repo: Any, n: int, have: int, label: str, real_runs: int = REAL_RUNS) -> None:
    """Grow the active stack's history from ``have`` to ``n`` runs: real ones first (up to
    ``real_runs`` in all), then copies (see the module docstring)."""
    real = max(0, min(n, real_runs) - have)
    if real:
        record_runs(repo, real, label)
    if n - have - real > 0:
        clone_runs(repo, n - have - real, label)


def clone_runs(repo: Any, count: int, label: str) -> None:
    """Insert ``count`` copies of the last recorded run of the seed pipeline, in bulk."""
    import sqlalchemy as sa

    from runstack.artifact_stores._verify import content_hash
    from runstack.metadata_stores import _schema as t

    store = repo.active_stack.metadata_store
    artifact_store = repo.active_stack.artifact_store
    engine = store.engine
    t0 = time.perf_counter()
    with engine.connect() as conn:
        run = conn.execute(sa.select(t.runs).order_by(t.runs.c.id.desc()).limit(1)).mappings().one()
        steps = (
            conn.execute(
                sa.select(t.steps).where(t.steps.c.run_id == run["id"]).order_by(t.steps.c.id)
            )
            .mappings()
            .all()
        )
        step_ids = [s["id"] for s in steps]
        params = (
            conn.execute(
                sa.select(t.step_parameters).where(t.step_parameters.c.run_id == run["id"])
            )
            .mappings()
            .all()
        )
        arts = (
            conn.execute(sa.select(t.artifacts).where(t.artifacts.c.producer_step_id.in_(step_ids)))
            .mappings()
            .all()
        )
        outs = (
            conn.execute(sa.select(t.step_outputs).where(t.step_outputs.c.step_id.in_(step_ids)))
            .mappings()
            .all()
        )
        ins = (
            conn.execute(sa.select(t.step_inputs).where(t.step_inputs.c.step_id.in_(step_ids)))
            .mappings()
            .all()
        )
        top = {
            tab.name: conn.execute(sa.select(sa.func.max(tab.c.id))).scalar() or 0
            for tab in (t.runs, t.steps, t.artifacts)
        }
    step_2 = next(s["id"] for s in steps if s["name"] == "step_2")
    varied = next(
        o["artifact_id"]
        for o in outs
        if o["step_id"] == step_2 and o["name"] == "multiplied_output_int"
    )
    art_ids = {a["id"] for a in arts}
    done = 0
    while done < count:
        batch = min(CLONE_BATCH, count - done)
        rows: dict[str, list[dict[str, Any]]] = {
            x: [] for x in ("runs", "steps", "step_parameters", "artifacts", "outputs", "inputs")
        }
        for i in range(done, done + batch):
            rid = top["runs"] + i + 1
            shift = timedelta(milliseconds=i + 1)
            smap = {old: top["steps"] + i * len(steps) + k + 1 for k, old in enumerate(step_ids)}
            amap = {a["id"]: top["artifacts"] + i * len(arts) + k + 1 for k, a in enumerate(arts)}
            rows["runs"].append(
                {
                    **run,
                    "id": rid,
                    "name": f"{run['name']}-copy{i}",
                    "start_time": run["start_time"] + shift,
                    "end_time": run["end_time"] and run["end_time"] + shift,
                    "heartbeat_at": run["heartbeat_at"] and run["heartbeat_at"] + shift,
                }
            )
            for s in steps:
                cached = s["cached_from_step_id"]
                rows["steps"].append(
                    {
                        **s,
                        "id": smap[s["id"]],
                        "run_id": rid,
                        "cached_from_step_id": smap.get(cached, cached),
                        "start_time": s["start_time"] + shift,
                        "end_time": s["end_time"] and s["end_time"] + shift,
                    }
                )
            for par in params:
                rows["step_parameters"].append(
                    {**par, "step_id": smap[par["step_id"]], "run_id": rid}
                )
            for a in arts:
                new = {**a, "id": amap[a["id"]], "producer_step_id": smap[a["producer_step_id"]]}
                if a["id"] == varied:  # every copy its own value, as real runs have
                    data = json.dumps((i * 37) % 101 * 7).encode()
                    new["inline_data"] = data
                    new["content_hash"] = content_hash(
                        artifact_store, a["uri"], a["data_type"], a["materializer"], inline=data
                    )
                rows["artifacts"].append(new)
            for key, links in (("outputs", outs), ("inputs", ins)):
                for link in links:
                    aid = link["artifact_id"]
                    new_link = {**link, "step_id": smap[link["step_id"]]}
                    rows[key].append(new_link | {"artifact_id": amap.get(aid, aid)})
        with engine.begin() as conn:
            for table, key in (
                (t.runs, "runs"),
                (t.steps, "steps"),
                (t.step_parameters, "step_parameters"),
                (t.artifacts, "artifacts"),
                (t.step_outputs, "outputs"),
                (t.step_inputs, "inputs"),
            ):
                if rows[key]:
                    conn.execute(table.insert(), rows[key])
            if engine.dialect.name == "postgresql":  # ids were given: move the sequences on
                for table in (t.runs, t.steps, t.artifacts):
                    conn.execute(
                        sa.text(
                            f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                            f"(SELECT max(id) FROM {table.name}))"
                        )
                    )
        done += batch
        rate = done / (time.perf_counter() - t0)
        print(
            f"[bench]   {label}: {done}/{count} runs copied in bulk ({rate:.0f} runs/s)",
            file=sys.stderr,
            flush=True,
        )
    if not art_ids:
        raise AssertionError("the last real run wrote no artifacts to copy")


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
        build(repo, n, 0, f"sqlite store of {n} runs")
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
    from runstack.metadata_stores._engine import normalize_url

    admin_url = normalize_url(SERVERS[backend].format(db=ADMIN_DB))
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
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
                build(repo, n, have, f"{backend} store, {have} -> {n} runs", SERVER_REAL_RUNS)
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
