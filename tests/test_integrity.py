"""Crashed runs are detected, half-written artifacts are never readable, and bad input gives
errors that name what failed and how to fix it, losing nothing recorded before (issue 4)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from runstack.exceptions import (
    ArtifactCorruptedError,
    ArtifactNotFoundError,
    ConfigError,
    MaterializerError,
    RunstackError,
    SchemaVersionError,
    StepExecutionError,
    StepOutputError,
)
from runstack.execution import _heartbeat
from runstack.metadata_stores import _schema as t
from runstack.models import ExecutionStatus
from runstack.pipelines import pipeline
from runstack.repository import Repository
from runstack.stack import _flavors
from runstack.steps import Output, step

CRASHY = """
import sys, time
from pathlib import Path
from runstack.materializers import BaseMaterializer
from runstack.pipelines import pipeline
from runstack.steps import Output, step

class Big:
    pass

class SlowMaterializer(BaseMaterializer):
    ASSOCIATED_TYPES = (Big,)

    def handle_return(self, data):
        with self.artifact.open("part-1", "w") as f:
            f.write("x" * 100_000)
        Path(sys.argv[2]).touch()  # half written: tell the test to kill us now
        time.sleep(120)

@step
def first() -> int:
    return 41

@step
def hang(x: int) -> int:
    Path(sys.argv[2]).touch()  # mid-step
    time.sleep(120)
    return x

@step
def half_write(x: int) -> Big:
    return Big()

@pipeline
def crashy(first, second):
    second(first())

@step
def done(x: int) -> int:
    return x + 1

second = {"step": hang, "write": half_write, "ok": done}[sys.argv[1]]()
crashy(first(), second).run(run_name=sys.argv[3])
"""


def _start(root: Path, mode: str, run_name: str) -> tuple[subprocess.Popen[str], Path]:
    script = root / "crashy.py"
    script.write_text(CRASHY)
    marker = root / f"{run_name}.marker"
    env = {**os.environ, "RUNSTACK_REPOSITORY": str(root), "RUNSTACK_PROGRESS": "off"}
    proc = subprocess.Popen(
        [sys.executable, str(script), mode, str(marker), run_name],
        cwd=root,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    if mode == "ok":
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        return proc, marker
    deadline = time.monotonic() + 60
    while not marker.exists():
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        assert time.monotonic() < deadline, "the step never started"
        time.sleep(0.02)
    return proc, marker


def _kill(proc: subprocess.Popen[str]) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    if proc.stderr:
        proc.stderr.close()


def _history(repo: Repository) -> Any:
    return Repository(repo.root).get_pipeline("crashy")


def _recorded_artifacts(repo: Repository) -> list[tuple[str, str | None]]:
    store = repo.active_stack.metadata_store
    with store.engine.connect() as conn:
        return [
            tuple(r) for r in conn.execute(sa.select(t.artifacts.c.uri, t.artifacts.c.content_hash))
        ]


@pytest.mark.slow
def test_run_killed_mid_step_is_shown_crashed_when_viewed(repo: Repository) -> None:
    proc, _ = _start(repo.root, "step", "killed-mid-step")
    run = _history(repo).get_run("killed-mid-step")
    assert run.status is ExecutionStatus.RUNNING  # its process is alive: not a crash
    _kill(proc)

    run = _history(repo).get_run("killed-mid-step")
    assert run.status is ExecutionStatus.FAILED
    assert "crashed" in run.error and f"pid {proc.pid}" in run.error
    assert "Re-run the pipeline" in run.error
    assert run.end_time is not None
    # The step in flight when the process died keeps its `running` row: it shows where it died.
    assert [(s.name, s.status) for s in run.steps] == [
        ("first", ExecutionStatus.COMPLETED),
        ("second", ExecutionStatus.RUNNING),
    ]
    # Views never write (issue 11): the store still says running until a launch or
    # `runstack run reconcile` records the crash. It ended when last seen alive.
    assert [r.name for r in _history(repo).get_runs(status="failed")] == []
    store = repo.active_stack.metadata_store
    assert run.end_time == store.get_run("killed-mid-step").heartbeat_at

    # Later runs succeed, record the crash, and reuse what the crashed run recorded.
    _start(repo.root, "ok", "after-crash")
    assert [r.name for r in _history(repo).get_runs(status="failed")] == ["killed-mid-step"]
    after = _history(repo).get_run("after-crash")
    assert after.status is ExecutionStatus.COMPLETED
    assert after.get_step("first").cache_explanation.source_run == "killed-mid-step"
    assert after.get_step("second").output.read() == 42


@pytest.mark.slow
def test_artifact_half_written_at_kill_is_never_readable(
    repo: Repository, file_artifacts: None
) -> None:
    proc, _ = _start(repo.root, "write", "killed-mid-write")
    _kill(proc)
    staged = [p for p in (repo.config_dir / "artifacts").rglob("*.partial-*") if p.is_dir()]
    assert staged and (staged[0] / "part-1").is_file()  # the half-written files are on disk...
    recorded = _recorded_artifacts(repo)
    assert len(recorded) == 1  # ...but only the finished output of `first` is recorded
    assert all(".partial-" not in uri and Path(uri).is_dir() for uri, _ in recorded)
    run = _history(repo).get_run("killed-mid-write")
    assert run.status is ExecutionStatus.FAILED
    # `second` died mid-write: its running row shows it, with no output recorded.
    assert [(s.name, s.status) for s in run.steps] == [
        ("first", ExecutionStatus.COMPLETED),
        ("second", ExecutionStatus.RUNNING),
    ]
    assert run.get_step("second").outputs == {} or len(run.get_step("second").outputs) == 0
    assert run.get_step("first").output.read() == 41
    _start(repo.root, "ok", "after-partial")
    assert _history(repo).get_run("after-partial").get_step("second").output.read() == 42


@pytest.mark.slow
def test_reconcile_command_sweeps_crashed_runs_only(repo: Repository) -> None:
    from runstack.cli._integrity import run_reconcile

    crashed, _ = _start(repo.root, "step", "swept")
    alive, _ = _start(repo.root, "step", "still-running")
    _kill(crashed)  # after the second launch, which would have recorded the crash itself
    try:
        cli = CliRunner()
        dry = cli.invoke(run_reconcile, ["--dry-run"])
        assert dry.exit_code == 0, dry.output
        assert "Would mark run 'swept'" in dry.output and "still-running" not in dry.output
        store = repo.active_stack.metadata_store
        assert [r[1] for r in store.running_runs()] == ["swept", "still-running"]

        result = cli.invoke(run_reconcile, [])
        assert result.exit_code == 0, result.output
        assert "Marked run 'swept'" in result.output and f"pid {crashed.pid}" in result.output
        assert [r[1] for r in store.running_runs()] == ["still-running"]
        assert cli.invoke(run_reconcile, []).output.strip() == "No crashed runs."
    finally:
        _kill(alive)
    assert "Marked run 'still-running'" in CliRunner().invoke(run_reconcile, []).output


def test_runs_of_other_hosts_are_crashed_when_their_heartbeat_stops(repo: Repository) -> None:
    from runstack.post_execution._crashes import reconcile

    store = repo.active_stack.metadata_store
    now = datetime.now(timezone.utc)
    store.create_run("remote", "stale", now - timedelta(hours=1), owner_host="gpu-7", owner_pid=1)
    store.create_run("remote", "fresh", now - timedelta(hours=1), owner_host="gpu-8", owner_pid=1)
    store.touch_run(store.get_run("fresh").id, now)
    found = reconcile(store)
    assert [c.run_name for c in found] == ["stale"]
    assert "no heartbeat" in found[0].reason and "gpu-7" in found[0].reason
    assert store.get_run("stale").status is ExecutionStatus.FAILED
    assert store.get_run("fresh").status is ExecutionStatus.RUNNING
    # Views apply the same rule on sight.
    store.create_run("remote", "viewed", now - timedelta(hours=1), owner_host="gpu-9", owner_pid=1)
    viewed = Repository(repo.root).get_pipeline("remote").get_run("viewed")
    assert viewed.status is ExecutionStatus.FAILED and "gpu-9" in viewed.error
    fresh = Repository(repo.root).get_pipeline("remote").get_run("fresh")
    assert fresh.status is ExecutionStatus.RUNNING
    # Once finished, a run is no longer beaten for: touch_run reports it.
    store.finish_run(store.get_run("fresh").id, ExecutionStatus.COMPLETED, now)
    assert store.touch_run(store.get_run("fresh").id, now) is False


def test_commands_are_registered_in_the_cli(repo: Repository) -> None:
    from runstack.cli import main

    reader(good(), double()).run(run_name="cli-run")
    cli = CliRunner()
    result = cli.invoke(main, ["-R", str(repo.root), "step", "explain", "cli-run", "b"])
    assert result.exit_code == 0, result.output
    assert "first successful execution of step `b`" in result.output
    result = cli.invoke(main, ["-R", str(repo.root), "run", "reconcile"])
    assert result.exit_code == 0 and "No crashed runs." in result.output
    result = cli.invoke(main, ["-R", str(repo.root), "step", "explain", "no-such-run", "b"])
    assert result.exit_code == 1 and "No run named 'no-such-run'" in result.output


def test_heartbeat_is_refreshed_while_a_long_step_runs(
    repo: Repository, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_heartbeat, "INTERVAL_S", 0.05)
    monkeypatch.setattr(_heartbeat, "_thread", None)  # start one with the short interval
    store = repo.active_stack.metadata_store
    seen: list[Any] = []

    @step
    def slow() -> int:
        # Wait (bounded) for a beat instead of a fixed sleep: a loaded CI machine may be slow.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            time.sleep(0.1)
            with store.engine.connect() as conn:
                row = conn.execute(sa.select(t.runs.c.start_time, t.runs.c.heartbeat_at)).one()
            if row[1] > row[0] + timedelta(seconds=0.2):
                break
        seen.extend(row)
        return 1

    @pipeline
    def beating(s):
        s()

    beating(slow()).run()
    start, beat = seen
    assert beat > start + timedelta(seconds=0.2)


# -- bad input: clear errors, nothing lost ------------------------------------------------


class Opaque:
    """No materializer handles this type."""


@step
def good() -> int:
    return 1


def _good_run() -> Any:
    @pipeline(name="bad_input")
    def first(a):
        a()

    return first(good()).run(run_name="good-run")


def _assert_nothing_lost(repo: Repository, failed_run: str) -> None:
    pipe = Repository(repo.root).get_pipeline("bad_input")
    assert pipe.get_run("good-run").get_step("a").output.read() == 1
    failed = pipe.get_run(failed_run)
    assert failed.status is ExecutionStatus.FAILED
    assert failed.get_step("a").status is ExecutionStatus.FAILED
    assert failed.get_step("a").traceback


def _run_bad(entry: Any, run_name: str) -> None:
    @pipeline(name="bad_input")
    def bad(a):
        a()

    bad(entry()).run(run_name=run_name)


def test_value_no_materializer_can_write(repo: Repository) -> None:
    _good_run()

    @step
    def opaque() -> Any:
        return Opaque()

    with pytest.raises(MaterializerError) as e:
        _run_bad(opaque, "opaque-run")
    msg = str(e.value)
    assert "Output 'output' of step 'a'" in msg and "'opaque-run'" in msg
    assert "Opaque" in msg and "BaseMaterializer" in msg
    _assert_nothing_lost(repo, "opaque-run")

    @step
    def nested() -> list:
        return [1, Opaque()]

    with pytest.raises(MaterializerError, match="Cannot write output 'output' of step 'a'"):
        _run_bad(nested, "nested-run")
    _assert_nothing_lost(repo, "nested-run")
    staged = list((repo.config_dir / "artifacts").rglob("*.partial-*"))
    assert staged == []  # a failed write cleans up its staging folder


def test_failed_write_of_a_later_output_leaves_no_files_behind(repo: Repository) -> None:
    @step
    def two() -> Output(fine=int, broken=Any):  # type: ignore[valid-type]
        return 1, Opaque()

    with pytest.raises(MaterializerError, match="Output 'broken'"):
        _run_bad(two, "two-run")
    leftovers = [p for p in (repo.config_dir / "artifacts").rglob("*") if p.is_file()]
    assert leftovers == []  # `fine` was written first, then removed with the failed step


def test_wrong_return_type(repo: Repository) -> None:
    _good_run()

    @step
    def liar() -> int:
        return "not an int"  # type: ignore[return-value]

    with pytest.raises(StepOutputError) as e:
        _run_bad(liar, "liar-run")
    msg = str(e.value)
    assert "returned str for output 'output', declared as int" in msg
    assert "'liar-run'" in msg and "change the annotation" in msg
    assert (e.value.step_name, e.value.run_name) == ("a", "liar-run")
    _assert_nothing_lost(repo, "liar-run")


@step
def double(x: int) -> int:
    return x * 2


@step(name="double", enable_cache=False)
def double_fresh(x: int) -> int:
    return x * 2


@pipeline(name="reader")
def reader(a, b):
    b(a())


def test_corrupted_or_deleted_artifact_files(repo: Repository, file_artifacts: None) -> None:
    first = reader(good(), double()).run(run_name="r1")
    art = first.get_step("a").output
    data = Path(art.uri) / "data.json"

    data.write_text("{ this is not json")
    with pytest.raises(ArtifactCorruptedError) as e:
        art.read()
    msg = str(e.value)
    assert "output 'output' of step 'a' in run 'r1'" in msg and "corrupted" in msg
    # Unverified (the user's choice), the materializer's own failure still says corrupted.
    with pytest.raises(MaterializerError, match="corrupted"):
        art.read(verify=False)
    # A later run does not reuse it: step a runs again and b reads the fresh value.
    r2 = reader(good(), double_fresh()).run(run_name="r2")
    assert r2.get_step("a").status is ExecutionStatus.COMPLETED
    assert r2.get_step("b").output.read() == 2

    data.unlink()
    for path in Path(r2.get_step("a").output.uri).iterdir():
        path.unlink()
    with pytest.raises(ArtifactNotFoundError) as e2:
        Repository(repo.root).get_pipeline("reader").get_run("r1").get_step("a").output.read()
    assert "step 'a' in run 'r1'" in str(e2.value) and "re-run" in str(e2.value)
    # An empty artifact folder is not a cache hit: the step runs again and says why.
    again = reader(good(), double()).run(run_name="r3")
    assert again.get_step("a").status is ExecutionStatus.COMPLETED
    assert "earlier artifact missing" in str(again.get_step("a").cache_explanation)
    assert again.get_step("b").output.read() == 2
    assert Repository(repo.root).get_pipeline("reader").get_run("r1").status.value == "completed"


def test_store_with_a_newer_schema_is_refused_untouched(repo: Repository) -> None:
    reader(good(), double()).run(run_name="before")
    store = repo.active_stack.metadata_store
    with store.engine.begin() as conn:
        old = conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '9999'")
    store.dispose()
    _flavors._stores.clear()
    with pytest.raises(SchemaVersionError) as e:
        Repository(repo.root).get_pipeline("reader")
    msg = str(e.value)
    assert "'9999'" in msg and "metadata.db" in msg and "pip install -U runstack" in msg
    with pytest.raises(SchemaVersionError):
        reader(good(), double()).run(run_name="refused")
    # Nothing was changed: with the old revision back, history is as it was.
    engine = sa.create_engine(store.url)
    with engine.begin() as conn:
        assert conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar() == "9999"
        conn.exec_driver_sql(f"UPDATE alembic_version SET version_num = '{old}'")
    engine.dispose()
    _flavors._stores.clear()
    runs = Repository(repo.root).get_pipeline("reader").get_run_names()
    assert runs == ["before"]


@pytest.mark.parametrize(
    "content",
    ["active_stack: [unclosed\n", "- just\n- a list\n", "stacks: 5\n"],
    ids=["bad-yaml", "not-a-mapping", "invalid"],
)
def test_unreadable_config_file(repo: Repository, content: str) -> None:
    reader(good(), double()).run(run_name="kept")
    text = repo.config_path.read_text()
    repo.config_path.write_text(content)
    with pytest.raises(ConfigError) as e:
        Repository(repo.root)
    assert str(repo.config_path) in str(e.value)
    repo.config_path.write_text(text)
    assert Repository(repo.root).get_pipeline("reader").get_run_names() == ["kept"]


def test_user_errors_are_wrapped_with_step_and_run(repo: Repository) -> None:
    @step
    def boom() -> int:
        raise KeyError("missing column")

    with pytest.raises(StepExecutionError) as e:
        _run_bad(boom, "boom-run")
    assert isinstance(e.value, RunstackError) and isinstance(e.value.__cause__, KeyError)
    assert "'a'" in str(e.value) and "'boom-run'" in str(e.value)
