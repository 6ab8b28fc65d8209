"""Deleting runs and gc: records first, files after, never breaking what is kept or the cache."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from test_lineage import _run

from runstack.cli import main
from runstack.exceptions import RunNotFoundError, RunstackError
from runstack.lifecycle._retention import remove_runs
from runstack.metadata_stores import SQLMetadataStore
from runstack.metadata_stores import _schema as t
from runstack.metadata_stores._pruning import PlanChanged
from runstack.models import ArtifactRecord, ExecutionStatus
from runstack.pipelines import pipeline
from runstack.repository import Repository
from runstack.steps import step

GC_WORKER = Path(__file__).parent / "_gc_worker.py"


def _cli(*args: str, code: int = 0) -> str:
    result = CliRunner().invoke(main, list(args), prog_name="runstack")
    assert result.exit_code == code, (args, result.output, result.exception)
    return result.stdout if code == 0 else result.stderr


def _snapshot(repo: Repository) -> tuple[dict[str, int], list[str]]:
    """Row counts of every table and every file under the artifact store."""
    stack = repo.active_stack
    with stack.metadata_store.engine.connect() as conn:
        counts = {
            table.name: conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
            for table in t.metadata.sorted_tables
        }
    root = Path(stack.artifact_store.path)
    return counts, sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def _all_recorded_files_exist(repo: Repository) -> None:
    stack = repo.active_stack
    with stack.metadata_store.engine.connect() as conn:
        rows = conn.execute(sa.select(t.artifacts.c.uri, t.artifacts.c.inline_data)).all()
    records = [ArtifactRecord(0, uri, "", "", 0, inline=data) for uri, data in rows]
    missing = [r.uri for r in records if not stack.artifact_store.holds(r)]
    assert missing == []


def test_delete_keeps_what_kept_runs_use(team: Repository, file_artifacts: None) -> None:
    for name in ("r1", "r2", "r3"):
        _run(name)
    pipe = team.get_pipeline("lineage_pipeline")
    r1 = pipe.get_run("r1")
    evaluated = r1.get_step("evaluate").output.uri
    before = _snapshot(team)
    # A misspelt name deletes nothing and says which runs exist and how to list them.
    with pytest.raises(RunNotFoundError) as missing:
        team.delete_run("r11")
    assert "'r1'" in str(missing.value) and "runstack run list" in str(missing.value)
    assert _snapshot(team) == before
    dry = json.loads(_cli("run", "delete", "r1", "--dry-run", "--json"))
    assert _snapshot(team) == before  # a dry run touches nothing
    # r2 and r3 reused r1's load and train outputs: those steps stay, with their run.
    assert dry["runs"] == [] and dry["kept_for_other_runs"] == {"r1": ["load", "train"]}
    assert dry["steps"] == 1 and [a["uri"] for a in dry["artifacts"]] == [evaluated]
    assert dry["bytes"] == sum(a["bytes"] for a in dry["artifacts"] + dry["logs"]) > 0

    removal = team.delete_run("r1")
    assert removal.kept == {"r1": ["load", "train"]} and removal.steps == 1
    assert not Path(evaluated).exists()
    _all_recorded_files_exist(team)
    pipe = team.get_pipeline("lineage_pipeline")
    assert pipe.get_run("r1").get_step_names() == ["load", "train"]
    r2 = pipe.get_run("r2")
    assert r2.get_step("train").output.read() == 0.6
    assert r2.get_step("train").cache_explanation.source_run == "r1"
    assert [s.run.name for s in r2.get_step("load").output.consumers] == ["r1", "r2", "r3"]
    _run("r4")  # the cache still serves what was kept
    assert team.get_pipeline("lineage_pipeline").get_run("r4").get_step("train").is_cached

    # Deleting every run that used them removes them too; nothing is left behind.
    out = _cli("run", "delete", "r1", "r2", "r3", "r4")
    assert "runs: 4" in out
    store = team.active_stack.metadata_store
    assert store.list_runs() == []
    counts, files = _snapshot(team)
    assert {k: v for k, v in counts.items() if k not in ("pipelines", "alembic_version")} == {
        k: 0 for k in counts if k not in ("pipelines", "alembic_version")
    }
    run_folders = [f for f in files if f.count("/") >= 1]
    assert run_folders == []
    with pytest.raises(RunNotFoundError):
        team.delete_run("r1")


def test_gc_selects_by_age_status_and_keeps_tagged_and_newest(team: Repository) -> None:
    for i in range(4):
        _run(f"old-{i}")
    store = team.active_stack.metadata_store
    _cli("run", "tag", "old-0", "keep=yes")
    month_ago = datetime.now(timezone.utc).replace(tzinfo=None) - timedelta(days=40)
    with store.engine.begin() as conn:
        for n, name in enumerate(["old-0", "old-1"]):
            conn.execute(
                t.runs.update()
                .where(t.runs.c.name == name)
                .values(start_time=month_ago + timedelta(seconds=n))
            )
    assert json.loads(_cli("gc", "--json"))["runs"] == []  # nothing selected without criteria
    report = json.loads(_cli("gc", "--older-than", "30d", "--dry-run", "--json"))
    # old-1..3 reused old-0's load and train from the cache: old-0 keeps those two steps.
    assert report["runs"] == ["old-1"]
    assert report["kept_for_other_runs"] == {"old-0": ["load", "train"]}
    assert report["steps"] == 1 + 3  # old-0's evaluate, all of old-1
    spared = json.loads(
        _cli("gc", "--older-than", "4w", "--keep-tag", "keep=yes", "--dry-run", "--json")
    )
    assert (spared["runs"], spared["kept_for_other_runs"]) == (["old-1"], {})
    assert json.loads(_cli("gc", "--status", "failed", "--json"))["steps"] == 0
    _cli("gc", "--keep-last", "1", "--keep-tag", "keep=yes")
    assert [r.name for r in store.list_runs()] == ["old-0", "old-3"]  # tagged; the newest
    _all_recorded_files_exist(team)
    assert "Not a duration" in _cli("gc", "--older-than", "soon", code=1)


def test_missing_files_and_foreign_uris_are_not_errors(
    team: Repository, tmp_path: Path, file_artifacts: None
) -> None:
    _run("a")
    _run("b")
    store = team.active_stack.metadata_store
    b = team.get_pipeline("lineage_pipeline").get_run("b")
    gone = Path(b.get_step("evaluate").output.uri)
    shutil.rmtree(gone)  # already missing from disk (mlflow #3595): not an error
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "data.json").write_text("{}")
    with store.engine.begin() as conn:  # a record pointing outside the store's root
        conn.execute(
            t.artifacts.update()
            .where(t.artifacts.c.id == b.get_step("evaluate").output.id)
            .values(uri=str(elsewhere))
        )
    report = json.loads(_cli("run", "delete", "b", "--json"))
    assert report["runs"] == ["b"]
    assert report["outside_artifact_store"] == [str(elsewhere)]
    assert (elsewhere / "data.json").exists()  # never removed: not the store's


def test_gc_removes_orphans_and_staging_leftovers_after_the_grace_period(
    team: Repository,
) -> None:
    _run("a")
    stack = team.active_stack
    root = Path(stack.artifact_store.path)
    run_dir = Path(team.get_pipeline("lineage_pipeline").get_run("a").get_step("load").output.uri)
    step_dir = run_dir.parent
    orphan = step_dir.parent / "crashed-0123456789" / "output-abcdef0123"
    staging = Path(str(run_dir) + ".partial-0badc0de.tmp")
    fresh = step_dir.parent / "inflight-0123456789" / "output-abcdef0123"
    foreign = root / "someone-elses" / "file.txt"
    for folder in (orphan, staging, fresh, foreign.parent):
        folder.mkdir(parents=True)
    for f in (orphan / "data.json", staging / "data.json", fresh / "data.json", foreign):
        f.write_text("x" * 10)
    old = time.time() - 7 * 3600
    for f in (orphan / "data.json", staging / "data.json"):
        os.utime(f, (old, old))
    dry = json.loads(_cli("gc", "--dry-run", "--json"))
    assert sorted(o["uri"] for o in dry["orphans"]) == sorted([str(orphan), str(staging)])
    assert orphan.exists() and staging.exists()
    _cli("gc")
    assert not orphan.exists() and not staging.exists()
    assert fresh.exists() and foreign.exists()  # within the grace period; not our layout
    assert team.get_pipeline("lineage_pipeline").get_run("a").get_step("train").output.read() == 0.6
    _all_recorded_files_exist(team)


def test_gc_while_a_live_run_writes(team: Repository, backend, isolated: Path) -> None:  # type: ignore[no-untyped-def]
    for i in range(3):
        _run(f"seed-{i}")
    go = isolated / "go"
    worker = subprocess.Popen(
        [sys.executable, str(GC_WORKER), str(team.config_dir), "live", "12", str(go)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert worker.stdout is not None
    assert worker.stdout.readline().strip() == "ready"
    go.touch()
    rounds = 0
    while worker.poll() is None or rounds < 2:
        _cli("gc", "--keep-last", "1", "--grace", "0s")
        rounds += 1
    out, err = worker.communicate(timeout=120)
    assert worker.returncode == 0, err
    store: SQLMetadataStore = team.active_stack.metadata_store
    live = [r for r in store.list_runs() if r.name.startswith("live-")]
    assert live and all(r.status is ExecutionStatus.COMPLETED for r in live)
    # Every record left reads back, and no record points at a missing file.
    _all_recorded_files_exist(team)
    for run in team.get_pipeline("lineage_pipeline").runs:
        for done in run.steps:
            for output in done.outputs.values():
                output.read()
    _run("after")
    after = team.get_pipeline("lineage_pipeline").get_run("after")
    assert after.get_step("train").is_cached


_flakes = {"n": 0}


@step(retries=1, retry_delay=0.01, enable_cache=False)
def flaky_printer() -> int:
    _flakes["n"] += 1
    print(f"attempt {_flakes['n']}")
    if _flakes["n"] == 1:
        raise RuntimeError("flake")
    return 1


@pipeline
def flaky_pipeline(flaky):
    flaky()


def test_logs_of_every_attempt_are_kept_with_the_step_and_go_with_it(team: Repository) -> None:
    _flakes["n"] = 0
    flaky_pipeline(flaky_printer()).run(run_name="flaky")
    step_view = team.get_pipeline("flaky_pipeline").get_run("flaky").get_step("flaky")
    logs = [Path(a["logs_uri"]) for a in step_view.attempts]
    assert len(set(logs)) == 2 and all(p.exists() for p in logs)
    _cli("gc", "--grace", "0s")  # earlier attempts' logs are named by a record: not orphans
    assert all(p.exists() for p in logs)
    _cli("run", "delete", "flaky")
    assert not any(p.exists() for p in logs)


def test_orphans_are_left_alone_when_a_store_sharing_the_artifacts_is_unreachable(
    team: Repository,
) -> None:
    _run("a")
    _run("b")
    step_dir = Path(team.get_pipeline("lineage_pipeline").get_run("a").get_step("load").output.uri)
    orphan = step_dir.parent.parent / "crashed-0123456789" / "output-abcdef0123"
    orphan.mkdir(parents=True)
    (orphan / "data.json").write_text("{}")
    old = time.time() - 7 * 3600
    os.utime(orphan / "data.json", (old, old))
    # Its records might name that folder: without them nothing may be taken for an orphan.
    team.register_component(
        "metadata_store",
        "gone-db",
        "postgresql",
        {"url": "postgresql+psycopg://postgres@127.0.0.1:5432/rs_no_such_database"},
    )
    team.register_stack(
        "gone", orchestrator="local", metadata_store="gone-db", artifact_store="local"
    )
    result = CliRunner().invoke(main, ["gc", "--keep-last", "1", "--json"])
    assert result.exit_code == 0, result.output
    assert "Orphaned folders were not looked for" in result.stderr
    report = json.loads(result.stdout)
    assert (report["steps"], report["kept_for_other_runs"]) == (1, {"a": ["load", "train"]})
    assert report["orphans"] == [] and orphan.exists()


def test_a_plan_overtaken_by_a_cache_hit_deletes_nothing(team: Repository) -> None:
    _run("r1")
    store = team.active_stack.metadata_store
    (r1,) = store.list_runs()
    plan = store.plan_pruning([r1.id])  # r1 alone: everything of it would go
    assert plan.runs == {r1.id} and not plan.kept_steps
    _run("r2")  # meanwhile a live run reuses r1's load and train from the cache
    with pytest.raises(PlanChanged):
        store.execute_pruning(plan)
    r1_view = team.get_pipeline("lineage_pipeline").get_run("r1")
    assert r1_view.get_step_names() == ["load", "train", "evaluate"]
    assert r1_view.get_step("train").cache_key is not None  # still a cache source
    _all_recorded_files_exist(team)
    # Planned again, the steps r2 uses are kept.
    again = remove_runs(store, team.active_stack.artifact_store, [r1.id])
    assert again.kept == {"r1": ["load", "train"]}


def test_a_running_run_is_never_deleted(team: Repository) -> None:
    _run("done")
    store = team.active_stack.metadata_store
    live = store.create_run(
        "lineage_pipeline", "live", datetime.now(timezone.utc), owner_pid=os.getpid()
    )
    assert "are running; nothing was deleted" in _cli("run", "delete", "done", "live", code=1)
    with pytest.raises(RunstackError, match="'live' is running"):
        team.delete_run("live")
    report = json.loads(_cli("gc", "--keep-last", "0", "--json"))
    assert report["runs"] == ["done"]
    assert [r.name for r in store.list_runs()] == ["live"]
    assert store.runs_by_ids([live.id])[0].status is ExecutionStatus.RUNNING
