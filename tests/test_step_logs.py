"""A step's stdout, stderr and logging output are stored with it and still shown (issue 4)."""

from __future__ import annotations

import io
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from runstack.exceptions import ArtifactNotFoundError, StepExecutionError
from runstack.execution import _logs
from runstack.pipelines import pipeline
from runstack.repository import Repository
from runstack.steps import step


@step
def chatty() -> int:
    print("to stdout")
    print("to stderr", file=sys.stderr)
    logging.getLogger("user.module").warning("a warning with %s", "args")
    logging.getLogger("user.module").debug("below the logger's level: dropped")
    return 1


@step
def silent(x: int) -> int:
    return x + 1


@pipeline
def talk(a, b):
    b(a())


def test_stdout_stderr_and_logging_are_captured_and_echoed(
    repo: Repository, capsys: pytest.CaptureFixture[str]
) -> None:
    run = talk(chatty(), silent()).run()
    out, err = capsys.readouterr()
    assert "to stdout" in out and "to stderr" in err  # still shown while the step runs
    logs = run.get_step("a").logs
    assert logs.splitlines() == [
        "to stdout",
        "to stderr",
        "WARNING user.module: a warning with args",
    ]
    assert sys.stdout is not None and not isinstance(sys.stdout, _logs._Tee)


def test_silent_and_cached_steps_have_no_log_file(repo: Repository) -> None:
    run = talk(chatty(), silent()).run()
    step_b = run.get_step("b")
    assert step_b.logs == "" and step_b._record.logs_uri is None
    again = talk(chatty(), silent()).run()
    assert again.get_step("a").is_cached and again.get_step("a").logs == ""


def test_logs_through_a_handler_configured_before_the_run(
    repo: Repository, capsys: pytest.CaptureFixture[str]
) -> None:
    stream = sys.stderr  # bound now, like logging.basicConfig() at the top of a script
    handler = logging.StreamHandler(stream)
    logger = logging.getLogger("configured")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:

        @step
        def informs() -> int:
            logger.info("progress 50%%")
            return 1

        @pipeline
        def informing(a):
            a()

        run = informing(informs()).run()
    finally:
        logger.removeHandler(handler)
    assert "INFO configured: progress 50%" in run.get_step("a").logs
    assert "progress 50%" in capsys.readouterr().err


def test_a_failed_step_keeps_what_it_printed(repo: Repository) -> None:
    @step
    def fails() -> int:
        print("about to fail")
        raise RuntimeError("boom")

    @pipeline
    def failing(a):
        a()

    with pytest.raises(StepExecutionError):
        failing(fails()).run(run_name="failed-run")
    assert not isinstance(sys.stdout, _logs._Tee)
    failed = Repository().get_pipeline("failing").get_run("failed-run").get_step("a")
    assert failed.logs == "about to fail\n"


def test_deleted_log_file_is_a_clear_error(repo: Repository) -> None:
    run = talk(chatty(), silent()).run(run_name="logged")
    uri = run.get_step("a")._record.logs_uri
    shutil.rmtree(uri)
    with pytest.raises(ArtifactNotFoundError, match="logs of step 'a' in run 'logged'"):
        _ = Repository().get_pipeline("talk").get_run("logged").get_step("a").logs


def test_huge_output_is_cut_in_the_stored_log(
    repo: Repository, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(_logs, "MAX_CHARS", 1000)

    @step
    def floods() -> int:
        for i in range(500):
            print(f"line {i}")
        return 1

    @pipeline
    def flood(a):
        a()

    logs = flood(floods()).run().get_step("a").logs
    assert logs.startswith("line 0\n") and "log cut at 1000 characters" in logs
    assert len(logs) < 1200
    assert "line 499" in capsys.readouterr().out  # the console still gets everything


SCRIPT = """
import io
import logging
from runstack.pipelines import pipeline
from runstack.steps import step

@step
def warns() -> int:
    logging.getLogger("plain").warning("no logging configured")
    return 1

@pipeline
def unconfigured(a):
    a()

print("LOGS", repr(unconfigured(warns()).run().get_step("a").logs))
"""


@pytest.mark.slow
def test_warnings_without_any_logging_config_are_still_printed(
    repo: Repository, isolated: Path
) -> None:
    env = {**os.environ, "RUNSTACK_REPOSITORY": str(repo.root), "RUNSTACK_PROGRESS": "off"}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "no logging configured" in done.stderr  # as logging's last-resort handler would
    assert "LOGS 'WARNING plain: no logging configured\\n'" in done.stdout


def test_cli_prints_a_steps_logs(repo: Repository) -> None:
    from click.testing import CliRunner

    from runstack.cli import main

    talk(chatty(), silent()).run(run_name="first")
    talk(chatty(), silent()).run(run_name="second")
    cli = CliRunner()
    result = cli.invoke(main, ["-R", str(repo.root), "step", "logs", "first", "a"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[:2] == ["to stdout", "to stderr"]
    result = cli.invoke(main, ["-R", str(repo.root), "step", "logs", "second", "a"])
    assert result.exit_code == 0 and "was cached in run 'second'" in result.output


def test_streams_replaced_while_another_step_still_runs_are_captured_too(
    repo: Repository, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Routing is on because a step still runs elsewhere (a thread past its timeout); then the
    # streams are replaced (a test's capture, a notebook cell). The next run captures anyway.
    with _logs.redirected():
        out, err = io.StringIO(), io.StringIO()
        monkeypatch.setattr(sys, "stdout", out)
        monkeypatch.setattr(sys, "stderr", err)
        run = talk(chatty(), silent()).run()
        assert "to stdout" in run.get_step("a").logs.splitlines()
        assert "to stdout" in out.getvalue() and "to stderr" in err.getvalue()
    assert sys.stdout is out and sys.stderr is err  # unwrapped once no step runs
