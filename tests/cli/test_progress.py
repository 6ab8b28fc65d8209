"""The per-step progress listener that pipeline runs show by default."""

from __future__ import annotations

import io

import pytest

from runstack.exceptions import ConfigError, StepExecutionError
from runstack.execution import RunEvent
from runstack.execution._progress import ProgressListener, default_listener, format_duration
from runstack.pipelines import pipeline
from runstack.steps import step


def feed(listener: ProgressListener, failed: bool = False) -> None:
    listener(RunEvent("run_started", "pl", "r1"))
    listener(RunEvent("step_started", "pl", "r1", "load", "load"))
    listener(RunEvent("step_completed", "pl", "r1", "load", "load", duration=1.5))
    listener(RunEvent("step_started", "pl", "r1", "clean", "clean"))
    listener(RunEvent("step_cached", "pl", "r1", "clean", "clean", 0.01, "outputs of step #3"))
    listener(RunEvent("step_started", "pl", "r1", "train", "train"))
    if failed:
        listener(RunEvent("step_failed", "pl", "r1", "train", "train", 0.2, "ValueError: nan\nx"))
        listener(RunEvent("run_failed", "pl", "r1", detail="boom"))
    else:
        listener(RunEvent("step_completed", "pl", "r1", "train", "train", duration=75.0))
        listener(RunEvent("run_completed", "pl", "r1"))
    listener.close()


def test_plain_lines_when_not_a_terminal():
    out = io.StringIO()
    feed(ProgressListener(["load", "clean", "train", "report"], stream=out), failed=True)
    lines = out.getvalue().splitlines()
    assert lines[:7] == [
        "Running pipeline pl as run r1",
        "  … load: running",
        "  ✓ load: done in 1.50s",
        "  … clean: running",
        "  ↺ clean: cached in 0.01s: outputs of step #3",
        "  … train: running",
        "  ✗ train: failed in 0.20s: ValueError: nan",
    ]
    assert lines[7].startswith("Run r1 failed in ")
    assert lines[7].endswith("(1 done, 1 cached, 1 failed, 1 not run)")


def test_live_table_shows_every_step_with_its_status_and_time():
    out = io.StringIO()
    feed(ProgressListener(["load", "clean", "train"], stream=out, live=True))
    text = out.getvalue()
    assert "pipeline pl · run r1" in text
    for row in (
        ("load", "done", "1.50s"),
        ("clean", "cached", "0.01s"),
        ("train", "done", "1m15s"),
    ):
        line = next(line for line in text.splitlines() if f" {row[0]} " in line)
        assert row[1] in line and row[2] in line
    assert text.rstrip().splitlines()[-1].startswith("Run r1 completed in ")


def test_a_tty_stream_gets_the_live_table():
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert ProgressListener(stream=Tty()).live is True
    assert ProgressListener(stream=io.StringIO()).live is False


def test_durations_read_naturally():
    assert [format_duration(s) for s in (None, 0.041, 12.34, 245, 7380)] == [
        "",
        "0.04s",
        "12.3s",
        "4m05s",
        "2h03m",
    ]


def test_mode_is_chosen_by_environment(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("RUNSTACK_PROGRESS", "plain")
    assert isinstance(default_listener(["a"]), ProgressListener)
    assert default_listener().live is False  # type: ignore[attr-defined]
    monkeypatch.setenv("RUNSTACK_PROGRESS", "off")
    quiet = default_listener()
    assert not isinstance(quiet, ProgressListener)
    monkeypatch.setenv("RUNSTACK_PROGRESS", "loud")
    with pytest.raises(ConfigError, match="live, plain, log, off"):
        default_listener()


@step
def one() -> int:
    return 1


@step
def explode(x: int) -> int:
    raise RuntimeError("no")


@pipeline
def fine(a):
    a()


@pipeline
def broken(a, b):
    b(a())


def test_runs_show_progress_by_default(repo, capsys, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("RUNSTACK_PROGRESS", "plain")
    fine(a=one()).run(run_name="shown")
    err = capsys.readouterr().err
    assert "Running pipeline fine as run shown" in err and "✓ a: done in" in err
    with pytest.raises(StepExecutionError):
        broken(a=one(), b=explode()).run(run_name="broken-run")
    err = capsys.readouterr().err
    assert "✓ a: done" in err and "✗ b: failed" in err and "Run broken-run failed" in err


def test_a_listener_given_to_the_stack_replaces_the_progress(repo, capsys):
    events: list[RunEvent] = []
    repo.active_stack.run_pipeline(fine(a=one()), run_name="quiet", listener=events.append)
    assert [e.kind for e in events] == [
        "run_started",
        "step_started",
        "step_completed",
        "run_completed",
    ]
    assert capsys.readouterr().err == ""
