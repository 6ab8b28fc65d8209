"""What a program loads (issue 15): browsing history never imports the pipeline runner,
nor SQLAlchemy when the store is a current SQLite file, commands that only read the config
never import SQLAlchemy, and defining steps without a config never imports pydantic.

Each check runs the command in a new interpreter and looks at ``sys.modules`` afterwards; a
module imported by the command itself, not by the test, is what counts.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from runstack.cli._main import COMMANDS, main

STEPS = textwrap.dedent(
    """
    from runstack.pipelines import pipeline
    from runstack.steps import StepContext, step

    @step
    def one() -> int:
        return 1

    @step
    def double(x: int) -> int:
        return 2 * x
    """
)
PIPELINE = STEPS + textwrap.dedent(
    """
    @pipeline
    def tiny(one, double):
        double(one())

    tiny(one=one(), double=double()).run(run_name="only")
    """
)

WATCHED = ("runstack.execution", "sqlalchemy", "pydantic", "rich.table", "alembic", "fsspec")

PROBE = textwrap.dedent(
    """
    import json, sys
    {body}
    print(json.dumps({{m: m in sys.modules for m in {watched!r}}}))
    """
)


def loaded(body: str, repo: Path) -> dict[str, bool]:
    """Which watched modules are imported after running ``body`` in a fresh interpreter."""
    env = {**os.environ, "RUNSTACK_REPOSITORY": str(repo), "RUNSTACK_PROGRESS": "off"}
    code = PROBE.format(body=textwrap.dedent(body), watched=WATCHED)
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def cli_loaded(args: list[str], repo: Path) -> dict[str, bool]:
    return loaded(
        f"""
        from runstack.cli import main
        try:
            main({args!r}, prog_name="runstack")
        except SystemExit as e:
            assert not e.code, e.code
        """,
        repo,
    )


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A repository with one recorded run of a two-step pipeline, named "only"."""
    root = tmp_path_factory.mktemp("lazy")
    env = {**os.environ, "RUNSTACK_REPOSITORY": str(root), "RUNSTACK_PROGRESS": "off"}
    subprocess.run([sys.executable, "-m", "runstack.cli", "init", str(root)], env=env, check=True)
    (root / "tiny.py").write_text(PIPELINE)
    subprocess.run([sys.executable, str(root / "tiny.py")], env=env, check=True, cwd=root)
    return root


@pytest.mark.parametrize(
    "args",
    [
        ["run", "list"],
        ["run", "show", "only"],
        ["pipeline", "list"],
        ["step", "show", "only", "double"],
    ],
)
def test_browsing_commands_do_not_import_the_runner(recorded: Path, args: list[str]):
    found = cli_loaded(args, recorded)
    assert not found["runstack.execution"], f"`runstack {' '.join(args)}` imported execution"
    assert not found["alembic"], "an up-to-date store is opened without Alembic"
    # A current SQLite store is read with stdlib sqlite3; the engine is made on first need.
    assert not found["sqlalchemy"], f"`runstack {' '.join(args)}` imported SQLAlchemy"
    # The built-in flavors are dataclasses and piped tables are plain text.
    assert not found["pydantic"], f"`runstack {' '.join(args)}` imported pydantic"
    assert not found["rich.table"], f"`runstack {' '.join(args)}` imported rich"


def test_browsing_through_the_repository_does_not_import_the_runner(recorded: Path):
    found = loaded(
        """
        from runstack.repository import Repository
        run = Repository().get_pipeline("tiny").runs[-1]
        assert run.get_step("double").outputs["output"].read() == 2
        assert Repository().get_pipeline("tiny").runs[0].get_step("one").outputs[
            "output"
        ].read() == 1
        assert [p.name for p in Repository().get_pipelines()] == ["tiny"]
        """,
        recorded,
    )
    assert not found["runstack.execution"] and not found["pydantic"]
    assert not found["sqlalchemy"], "reading a current SQLite store imported SQLAlchemy"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["run", "list"], ["only", "tiny", "completed"]),
        (["run", "show", "only"], ["only", "one.output", "double.output", "2"]),
        (["pipeline", "list"], ["tiny", "only", "completed"]),
    ],
)
def test_browsing_without_sqlalchemy_prints_the_history(
    recorded: Path, args: list[str], expected: list[str]
):
    code = PROBE.format(
        body=textwrap.dedent(
            f"""
            from runstack.cli import main
            try:
                main({args!r}, prog_name="runstack")
            except SystemExit as e:
                assert not e.code, e.code
            """
        ),
        watched=WATCHED,
    )
    env = {**os.environ, "RUNSTACK_REPOSITORY": str(recorded), "RUNSTACK_PROGRESS": "off"}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    *out, found = done.stdout.strip().splitlines()
    assert not json.loads(found)["sqlalchemy"]
    words = " ".join(out).split()
    assert all(w in words for w in expected), (expected, out)


HISTORY_PIPELINE = STEPS + textwrap.dedent(
    """
    @step
    def looks_back(context: StepContext, x: int) -> int:
        # Reads the history from inside the run (not cached: a StepContext step).
        past = context.metadata_store.get_pipeline("tiny").runs
        return len(past) * 100 + past[0].get_step("double").outputs["output"].read() + x

    @pipeline
    def grows(one, double, looks_back):
        looks_back(double(one()))

    def run(name):
        return grows(one=one(), double=double(), looks_back=looks_back()).run(
            run_name=name, tags={"exp": "lazy", "n": name}
        )
    """
)


def test_running_a_pipeline_on_a_current_store_imports_neither_sqlalchemy_nor_alembic(
    recorded: Path, tmp_path: Path
):
    # Writes of a current SQLite store (runs, steps, tags, heartbeats) go straight to sqlite3;
    # cache lookups and a step's reads of the history are plain SQL text too.
    repo = tmp_path / "repo"
    shutil.copytree(recorded, repo)
    found = loaded(
        f"""
        import sys
        from datetime import datetime, timezone
        {textwrap.indent(HISTORY_PIPELINE, " " * 8).strip()}
        first, again = run("first"), run("again")
        assert [s.status.value for s in again.steps] == ["cached", "cached", "completed"]
        assert again.get_step("looks_back").outputs["output"].read() == 104
        assert again.tags == {{"exp": "lazy", "n": "again"}}
        store = again._store
        assert store.touch_run(again.id, datetime.now(timezone.utc)) is False  # it ended
        from runstack.repository import Repository
        runs = Repository().get_pipeline("grows").get_runs(tags={{"exp": "lazy"}})
        assert [r.name for r in runs] == ["first", "again"], runs
        """,
        repo,
    )
    assert not found["sqlalchemy"], "running a pipeline on a current SQLite store imported it"
    assert not found["alembic"], "running a pipeline on a current SQLite store imported Alembic"
    # Every value is small enough to be kept inline: no file is written or read.
    assert not found["fsspec"], "a run whose values are all inline imported fsspec"


def test_a_new_store_is_created_with_alembic_then_recorded_to(tmp_path: Path):
    # Creating (or migrating) a store runs Alembic; what follows records as on any store.
    subprocess.run([sys.executable, "-m", "runstack.cli", "init", str(tmp_path)], check=True)
    found = loaded(
        f"""
        {textwrap.indent(HISTORY_PIPELINE, " " * 8).strip()}
        assert run("first").get_step("looks_back").outputs["output"].read() == 104
        """.replace('get_pipeline("tiny")', 'get_pipeline("grows")'),
        tmp_path,
    )
    assert found["alembic"] and found["sqlalchemy"]


@pytest.mark.parametrize(
    "args", [["stack", "list"], ["stack", "describe", "default"], ["metadata-store", "list"]]
)
def test_config_commands_do_not_import_sqlalchemy(recorded: Path, args: list[str]):
    found = cli_loaded(args, recorded)
    assert not found["sqlalchemy"] and not found["runstack.execution"]


def test_stack_list_reads_the_config_without_pydantic_or_rich(recorded: Path):
    # The config file is plain dataclasses; flavors (pydantic) load only to validate or build.
    found = cli_loaded(["stack", "list"], recorded)
    assert not any(found.values()), found


@pytest.mark.parametrize("args", [["run", "list"], ["run", "show", "only"], ["stack", "list"]])
def test_piped_tables_are_plain_text_without_rich(recorded: Path, args: list[str]):
    env = {**os.environ, "RUNSTACK_REPOSITORY": str(recorded)}
    out = subprocess.run(
        [sys.executable, "-m", "runstack.cli", *args], env=env, capture_output=True, text=True
    ).stdout
    assert "only" in out or "default" in out
    assert not set(out) & set("│┃━─"), out  # no box drawing when stdout is not a terminal
    assert not cli_loaded(args, recorded)["rich.table"]


def test_help_and_version_import_nothing_heavy(recorded: Path):
    for args in (["--help"], ["version"], ["run", "--help"]):
        found = cli_loaded(args, recorded)
        assert not any(found.values()), (args, found)


def test_every_command_in_the_table_loads_and_is_listed():
    """A table entry that names a missing module or attribute fails here, not for a user."""
    import click

    ctx = click.Context(main)
    top = main.list_commands(ctx)
    for path in COMMANDS:
        group, *rest = path.split(" ")
        assert group in top
        command = main.get_command(ctx, group)
        assert command is not None, path
        if rest:
            assert isinstance(command, click.Group)
            assert rest[0] in command.commands, path


def test_defining_steps_without_a_config_does_not_import_pydantic(tmp_path: Path):
    found = loaded(
        """
        from runstack.pipelines import pipeline
        from runstack.steps import step

        @step
        def one() -> int:
            return 1

        @pipeline
        def p(one):
            one()
        """,
        tmp_path,
    )
    assert not found["pydantic"] and not found["sqlalchemy"] and not found["runstack.execution"]


def test_a_config_class_still_validates_once_used(tmp_path: Path):
    found = loaded(
        """
        from runstack.exceptions import DefinitionError
        from runstack.steps import BaseStepConfig, step

        class Config(BaseStepConfig):
            lr: float = 0.1

        @step
        def train(config: Config) -> float:
            return config.lr

        assert train(lr=0.5).resolve_config().lr == 0.5
        try:
            train(lr="fast")
        except DefinitionError as e:
            assert "lr" in str(e)
        else:
            raise AssertionError("a bad config value was accepted")
        """,
        tmp_path,
    )
    assert found["pydantic"] and not found["sqlalchemy"]


def _frozen_at_exit(args: list[str], repo: Path) -> int:
    """gc.get_freeze_count() once the CLI's own atexit hooks have run (this one runs last)."""
    code = textwrap.dedent(
        f"""
        import atexit, gc, os
        atexit.register(lambda: os.write(1, b"frozen=%d" % gc.get_freeze_count()))
        from runstack.cli import main
        try:
            main({args!r}, prog_name="runstack")
        except SystemExit as e:
            assert not e.code, e.code
        """
    )
    env = {**os.environ, "RUNSTACK_REPOSITORY": str(repo), "RUNSTACK_PROGRESS": "off"}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return int(done.stdout.rsplit("frozen=", 1)[1])


def test_browsing_commands_skip_the_exit_collection_but_running_pipelines_does_not(
    recorded: Path,
):
    assert _frozen_at_exit(["run", "list"], recorded) > 0
    assert _frozen_at_exit(["stack", "list"], recorded) > 0
    # `pipeline run` ran the user's code in this process: its objects are finalized normally.
    assert _frozen_at_exit(["pipeline", "run", str(recorded / "tiny_def.py")], recorded) == 0


@pytest.fixture(autouse=True, scope="module")
def _pipeline_file(recorded: Path) -> None:
    (recorded / "tiny_def.py").write_text(
        PIPELINE.replace('tiny(one=one(), double=double()).run(run_name="only")\n', "")
        + "\ntiny_pipeline = tiny(one=one(), double=double())\n"
    )
