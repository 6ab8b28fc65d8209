"""Export/import: runs travel SQLite -> PostgreSQL -> MySQL (and onto S3) unchanged, field by
field and byte by byte, serve cache hits where they land, and import idempotently and safely."""

from __future__ import annotations

import io
import json
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from conformance_pipelines import make_first_pipeline
from conformance_support import SERVERS
from test_lineage import _run
from test_retention import _flakes, flaky_pipeline, flaky_printer

from runstack.cli import main
from runstack.exceptions import StepExecutionError
from runstack.lifecycle._bundle import export_bundle, import_bundle
from runstack.metadata_stores import _schema as t
from runstack.metadata_stores._transfer import BundleError
from runstack.post_execution import History
from runstack.repository import Repository


def _cli(*args: str, code: int = 0) -> str:
    result = CliRunner().invoke(main, list(args), prog_name="runstack")
    assert result.exit_code == code, (args, result.output, result.exception)
    return result.stdout if code == 0 else result.stderr


@pytest.fixture
def servers() -> Iterator[dict[str, str]]:
    """A fresh database on the PostgreSQL and on the MySQL server, dropped afterwards."""
    made: list[tuple[sa.Engine, str, str]] = []
    urls = {}
    for flavor in ("postgresql", "mysql"):
        admin = sa.create_engine(
            SERVERS[flavor], isolation_level="AUTOCOMMIT", poolclass=sa.NullPool
        )
        name = f"rs_{uuid.uuid4().hex[:12]}"
        with admin.connect() as conn:
            conn.exec_driver_sql(
                f"CREATE DATABASE {name}" + (" CHARACTER SET utf8mb4" if flavor == "mysql" else "")
            )
        made.append((admin, name, flavor))
        urls[flavor] = (
            sa.make_url(SERVERS[flavor]).set(database=name).render_as_string(hide_password=False)
        )
    yield urls
    from runstack.stack import _flavors

    for store in _flavors._stores.values():
        store.dispose()
    _flavors._stores.clear()
    for admin, name, flavor in made:
        with admin.connect() as conn:
            conn.exec_driver_sql(
                f"DROP DATABASE {name}" + (" WITH (FORCE)" if flavor == "postgresql" else "")
            )


def _stack(repo: Repository, key: str, flavor: str, url: str, artifacts: tuple[str, dict]) -> None:
    repo.register_component("metadata_store", f"{key}-db", flavor, {"url": url})
    repo.register_component("artifact_store", f"{key}-files", *artifacts)
    repo.register_stack(
        key, orchestrator="local", metadata_store=f"{key}-db", artifact_store=f"{key}-files"
    )


def _no_ids(value: Any) -> Any:
    """Cache decisions name source steps by id, which differs between stores; runs by name."""
    if isinstance(value, dict):
        return {k: _no_ids(v) for k, v in value.items() if k not in ("step_id", "logs_uri")}
    if isinstance(value, list):
        return [_no_ids(v) for v in value]
    return value


def _views(history: History) -> dict[str, Any]:
    """Everything the views show about every run, with every artifact read back."""
    out: dict[str, Any] = {}
    for p in history.get_pipelines():
        for run in p.runs:
            steps = {}
            for s in run.steps:
                steps[s.name] = {
                    "entrypoint": s.entrypoint_name,
                    "status": s.status,
                    "start": s.start_time,
                    "end": s.end_time,
                    "error": s.error,
                    "traceback": s.traceback,
                    "parameters": s.parameters,
                    "cache_key": s.cache_key,
                    "cache_components": s.cache_components,
                    "explanation": _no_ids(
                        (s.cache_explanation.cached, s.cache_explanation.source_run)
                    ),
                    "role": s.role,
                    "parents": [x.name for x in s.parent_steps],
                    "cached": s.is_cached,
                    "attempts": _no_ids(s.attempts),
                    "options": s.options,
                    "logs": s.logs,
                    "outputs": {
                        n: {
                            "data_type": a.data_type,
                            "materializer": a.materializer,
                            "content_hash": a.content_hash,
                            "reused": a.is_cached,
                            "producer": (a.producer_step.run.name, a.producer_step.name),
                            "value": a.read(),
                            "consumers": [(c.run.name, c.name) for c in a.consumers],
                        }
                        for n, a in s.outputs.items()
                    },
                    "inputs": {
                        n: (a.content_hash, a.producer_step.run.name) for n, a in s.inputs.items()
                    },
                }
            out[run.name] = {
                "pipeline": run.pipeline_name,
                "status": run.status,
                "start": run.start_time,
                "end": run.end_time,
                "error": run.error,
                "tags": run.tags,
                "note": run.note,
                "upstream": [r.name for r in run.upstream_runs],
                "steps": steps,
            }
    return out


def _make_history() -> None:
    _run("base")
    _run("sweep-1")
    make_first_pipeline(multiplier=3).run(run_name="mult-3", tags={"exp": "lr-sweep"})
    with pytest.raises(StepExecutionError):
        make_first_pipeline(fail=True).run(run_name="broken")
    _flakes["n"] = 0
    flaky_pipeline(flaky_printer()).run(run_name="flaky")


def test_round_trip_sqlite_postgresql_mysql(
    repo: Repository, servers: dict[str, str], s3: Any, isolated: Path
) -> None:
    _make_history()
    _cli("run", "note", "base", "the baseline")
    _cli("run", "tag", "base", "team=vision")
    source = _views(repo.active_stack.history)
    assert len(source) == 5
    _stack(
        repo,
        "pg",
        "postgresql",
        servers["postgresql"],
        ("local", {"path": str(isolated / "pg-art")}),
    )
    _stack(
        repo,
        "my",
        "mysql",
        servers["mysql"],
        ("fsspec", {"url": s3.url, "storage_options": s3.storage_options}),
    )
    first = isolated / "from-sqlite.tar"
    out = json.loads(
        _cli(
            "run",
            "export",
            "base",
            "sweep-1",
            "mult-3",
            "broken",
            "flaky",
            "-o",
            str(first),
            "--json",
        )
    )
    assert out["runs"] == ["base", "broken", "flaky", "mult-3", "sweep-1"]
    _cli("run", "import", str(first), "--stack", "pg")
    assert _views(repo.get_stack("pg").history) == source
    second = isolated / "from-pg.tar"
    _cli(
        "run",
        "export",
        "--pipeline",
        "lineage_pipeline",
        "--all",
        "--stack",
        "pg",
        "-o",
        str(second),
    )
    third = isolated / "from-pg-2.tar"
    _cli("run", "export", "mult-3", "broken", "flaky", "--stack", "pg", "-o", str(third))
    for bundle in (second, third):
        _cli("run", "import", str(bundle), "--stack", "my")
    landed = repo.get_stack("my")
    assert landed.artifact_store.path.startswith("s3://")
    assert _views(landed.history) == source

    # Importing again adds nothing.
    def counts() -> dict[str, int]:
        with landed.metadata_store.engine.connect() as conn:
            return {
                tb.name: conn.execute(sa.select(sa.func.count()).select_from(tb)).scalar_one()
                for tb in t.metadata.sorted_tables
            }

    before, objects = counts(), s3.object_keys()
    assert "Nothing to import" in _cli("run", "import", str(second), "--stack", "my")
    assert counts() == before and s3.object_keys() == objects

    # Cache keys travelled: the same steps run on the MySQL stack are cache hits.
    repo.set_active_stack("my")
    _run("after-import")
    after = repo.get_pipeline("lineage_pipeline", "my").get_run("after-import")
    assert after.get_step("load").is_cached and after.get_step("train").is_cached
    assert after.get_step("train").cache_explanation.source_run == "base"


def test_a_clash_names_the_run_and_writes_nothing(repo: Repository, isolated: Path) -> None:
    _run("base")
    bundle = isolated / "b.tar"
    _cli("run", "export", "base", "-o", str(bundle))
    # Another store where "base" is a run of another pipeline.
    stack = Repository.init(isolated / "other").active_stack
    stack.run_pipeline(make_first_pipeline(), run_name="base")
    files_before = sorted(Path(stack.artifact_store.path).rglob("*"))
    with pytest.raises(BundleError, match="Run 'base' already exists .*different content"):
        import_bundle(stack.metadata_store, stack.artifact_store, bundle)
    assert [r.name for r in stack.metadata_store.list_runs()] == ["base"]
    assert sorted(Path(stack.artifact_store.path).rglob("*")) == files_before


def _rewrite(bundle: Path, edit: Any) -> Path:
    """A copy of ``bundle`` with its members passed through ``edit(name, data) -> [(name,
    data)]``."""
    out = bundle.with_name("edited.tar")
    with tarfile.open(bundle) as src, tarfile.open(out, "w") as dst:
        for m in src.getmembers():
            data = src.extractfile(m).read()  # type: ignore[union-attr]
            for name, body in edit(m.name, data):
                info = tarfile.TarInfo(name)
                info.size = len(body)
                dst.addfile(info, io.BytesIO(body))
    return out


def test_damaged_or_unsafe_bundles_are_refused_before_anything_is_written(
    repo: Repository, isolated: Path, file_artifacts: None
) -> None:
    # Artifact files to damage: small values would otherwise be inline, inside records.json.
    _run("base")
    bundle = isolated / "b.tar"
    export_bundle(
        repo.active_stack.metadata_store,
        repo.active_stack.artifact_store,
        [r.id for r in repo.active_stack.metadata_store.list_runs()],
        bundle,
    )
    target = Repository.init(isolated / "target").active_stack
    root = Path(target.artifact_store.path)

    def flip(name: str, data: bytes) -> list[tuple[str, bytes]]:
        return [(name, data[:-1] + b"0" if name.startswith("artifacts/1/") else data)]

    def escape(name: str, data: bytes) -> list[tuple[str, bytes]]:
        extra = [("../../escaped.txt", b"x")] if name == "records.json" else []
        return [(name, data), *extra]

    for edit, message in ((flip, "damaged or was altered"), (escape, "unsafe member|unexpected")):
        with pytest.raises(BundleError, match=message):
            import_bundle(target.metadata_store, target.artifact_store, _rewrite(bundle, edit))
        assert target.metadata_store.list_runs() == []
        assert list(root.rglob("*")) == []
    assert not (isolated / "escaped.txt").exists()
    imported = import_bundle(target.metadata_store, target.artifact_store, bundle)
    assert imported.imported == ["base"] and imported.artifacts == 3


def test_a_partial_run_imported_first_is_completed_later(repo: Repository, isolated: Path) -> None:
    _run("r1")
    _run("r2")  # reuses r1's load and train from the cache
    first, second = isolated / "r2.tar", isolated / "r1.tar"
    _cli("run", "export", "r2", "-o", str(first))
    _cli("run", "export", "r1", "-o", str(second))
    target = Repository.init(isolated / "target").active_stack
    got = import_bundle(target.metadata_store, target.artifact_store, first)
    assert got.imported == ["r1", "r2"]  # r1 partially: the steps r2 reused
    assert target.history.get_run("r1").get_step_names() == ["load", "train"]
    got = import_bundle(target.metadata_store, target.artifact_store, second)
    assert got.present == ["r1"] and got.steps == 1
    r1 = target.history.get_run("r1")
    assert r1.get_step_names() == ["load", "train", "evaluate"]
    assert r1.get_step("evaluate").output.read() is True
    assert import_bundle(target.metadata_store, target.artifact_store, second).steps == 0
