"""Stores written at an older schema revision are upgraded in place and stay browsable."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import sqlalchemy as sa
from conformance_support import Backend

from runstack.metadata_stores import SQLMetadataStore
from runstack.metadata_stores._schema import SCHEMA_REVISION, metadata
from runstack.models import ExecutionStatus
from runstack.repository import Repository

FIXTURES = Path(__file__).parent.parent / "fixtures"
sys.path.insert(0, str(FIXTURES))

import schema_0001  # noqa: E402


def _use_store(repo: Repository, flavor: str, settings: dict[str, str]) -> None:
    repo.register_component("metadata_store", "old", flavor, settings)
    repo.register_stack(
        "old", orchestrator="local", metadata_store="old", artifact_store="local", activate=True
    )


def _check_upgraded_history(repo: Repository) -> None:
    store = repo.active_stack.metadata_store  # opening it upgrades it
    with store.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar() == (
            SCHEMA_REVISION
        )
    pipeline = repo.get_pipeline(schema_0001.PIPELINE, stack_key="old")
    old_first, old_second = (r[0] for r in schema_0001.RUNS)
    assert pipeline.get_run_names() == [old_first, old_second]
    first, second = pipeline.runs
    assert (first.status, second.status) == (ExecutionStatus.COMPLETED, ExecutionStatus.FAILED)
    assert first.start_time.microsecond == 1 and second.start_time.microsecond == 2
    assert second.error == "StepExecutionError: trainer failed"
    trainer = first.get_step("trainer")
    assert trainer.parameters == {"lr": 0.1, "epochs": 3, "tags": ["a", "b"]}
    assert second.get_step("trainer").status is ExecutionStatus.FAILED
    assert second.get_step("importer").is_cached
    assert second.get_step("importer").outputs["data"].id == first.get_step("importer").output.id
    assert pipeline.latest_successful_run.name == old_first
    # Parameters recorded before 0002 were back-filled, so filters find old runs too.
    assert [r.name for r in pipeline.get_runs(parameters={"trainer.lr": 1})] == [old_second]
    assert [r.name for r in pipeline.get_runs(parameters={"trainer.tags": ["a", "b"]})] == [
        old_first
    ]
    assert pipeline.get_runs(parameters={"importer.lr": 0.1}) == []


def test_checked_in_revision_0001_sqlite_store_is_upgraded(
    repo: Repository, tmp_path: Path
) -> None:
    original = FIXTURES / "metadata_0001.db"
    before = original.read_bytes()
    copy = tmp_path / "old.db"
    shutil.copy(original, copy)
    with sa.create_engine(f"sqlite:///{copy}").connect() as conn:
        assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar() == "0001"
    _use_store(repo, "sqlite", {"path": str(copy)})
    _check_upgraded_history(repo)
    assert original.read_bytes() == before


def test_revision_0001_store_is_upgraded_on_every_backend(
    repo: Repository, backend: Backend
) -> None:
    schema_0001.create_at_0001(backend.url)
    _use_store(repo, backend.flavor, backend.settings)
    _check_upgraded_history(repo)


def test_migrations_build_exactly_the_declared_schema(store: SQLMetadataStore) -> None:
    """_schema.py (what the code queries) and the migrations (what databases get) agree."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    with store.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, metadata) == []
