"""The ``runstack`` command group: global options, error handling, ``init`` and ``version``."""

from __future__ import annotations

from typing import Any

import click

from runstack import __version__
from runstack.cli._common import CliState, UserError


class RunstackGroup(click.Group):
    """Loads the commands of :data:`COMMANDS` on use; turns runstack errors into a one-line
    message and exit status 1, never a traceback.

    Errors from runstack itself (``RunstackError``) and refusals of the file system are the
    user's to fix; anything else is a bug and keeps its traceback.
    """

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.ClickException:
            raise
        except Exception as e:
            from runstack.exceptions import RunstackError

            if isinstance(e, RunstackError):
                raise UserError(str(e)) from None
            if isinstance(e, PermissionError | IsADirectoryError | NotADirectoryError):
                # The file system said no (a read-only folder, a file where a folder goes).
                raise UserError(f"{e.strerror}: {e.filename}") from None
            raise

    def main(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().main(*args, **kwargs)
        finally:
            _skip_collection_at_exit()

    # Commands of other modules come from COMMANDS (below), imported only when used.
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *(p for p in COMMANDS if " " not in p)})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            self.add_command(_load(cmd_name), cmd_name)
        return self.commands.get(cmd_name)


def _skip_collection_at_exit() -> None:
    """Let the interpreter exit without collecting the objects imports made (a command that
    only browsed or edited config).

    At exit CPython runs the cyclic garbage collector over everything SQLAlchemy, pydantic
    and rich built at import (~100-200 ms of a ~0.5 s command here). ``gc.freeze()`` in an
    atexit hook moves those objects out of its reach, so they are simply left to the OS. What
    this skips: ``__del__`` of objects in reference cycles, which Python never promises at
    exit anyway; atexit callbacks and ``weakref.finalize`` (how the SQLite store checkpoints
    and closes) still run. Not done once pipelines ran in this process (``pipeline run``):
    that is the user's code, whose cyclic objects may hold unflushed files.
    """
    import sys

    if "runstack.execution" in sys.modules:
        return
    import atexit
    import gc

    atexit.register(gc.freeze)


CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


@click.group(cls=RunstackGroup, context_settings=CONTEXT_SETTINGS)
@click.option(
    "--repository",
    "-R",
    metavar="PATH",
    envvar="RUNSTACK_REPOSITORY",
    help="Use the repository at PATH (default: the nearest .runstack folder above the working "
    "directory, else your user default).",
)
@click.version_option(__version__, "--version", prog_name="runstack")
@click.pass_context
def main(ctx: click.Context, repository: str | None) -> None:
    """runstack: ML pipelines whose every run is recorded, cached and browsable.

    \b
    Set up:        runstack init; runstack stack list
    Run:           runstack pipeline run train.py --config train.yaml
    Look back:     runstack run list; runstack run show RUN; runstack artifact read RUN STEP

    Every listing takes --json for scripts.
    """
    ctx.obj = CliState(repository)


@main.command()
@click.argument("path", default=".", type=click.Path(file_okay=False))
def init(path: str) -> None:
    """Create a runstack repository in PATH (default: here).

    The repository is a .runstack folder holding config.yaml.

    It starts with one stack, "default": the local orchestrator, an SQLite metadata store and
    a local artifact store, all inside .runstack. Running it again changes nothing.
    """
    from pathlib import Path

    from runstack.repository import REPO_DIR, Repository
    from runstack.stack._config import CONFIG_FILE

    existed = (Path(path) / REPO_DIR / CONFIG_FILE).is_file()
    repo = Repository.init(path)
    if existed:
        click.echo(f"{repo.config_dir} is already a runstack repository; nothing changed.")
    else:
        click.echo(f"Created a runstack repository in {repo.config_dir}")
    click.echo(f"Active stack: {repo.active_stack_key}. See all with `runstack stack list`.")


@main.command()
def version() -> None:
    """Print the runstack version."""
    click.echo(f"runstack {__version__}")


# -- commands from other modules, loaded on use ---------------------------------------------
#
# Every command defined outside this file, by its path -> "module:attribute". Nothing here is
# imported until that command runs (or `--help` lists it), so `runstack run list` loads the
# history commands and nothing else: no pipeline runner, no execution package.
#
# To add a command, write it in its own module and add ONE entry here:
#   "run compare": "runstack.cli._compare:run_compare",  # a sub-command of an existing group
#   "up": "runstack.cli._lifecycle:up",                    # a new top-level command or group
# The attribute is a click command or group, or a function taking the command's name and
# returning one (the component groups are made that way). A module imports only click and
# runstack.cli._common at module level; everything heavier (the repository, SQLAlchemy,
# pydantic, rich, runstack.execution) is imported inside the command that needs it, since the
# sibling sub-commands of a group are loaded together to list them.
COMMANDS: dict[str, str] = {
    "stack": "runstack.cli._stacks:stack",
    "orchestrator": "runstack.cli._stacks:component_group",
    "metadata-store": "runstack.cli._stacks:component_group",
    "metadata-store backup": "runstack.cli._integrity:metadata_store_backup",
    "artifact-store": "runstack.cli._stacks:component_group",
    "pipeline": "runstack.cli._history:pipeline_group",
    "pipeline run": "runstack.cli._pipeline_run:pipeline_run",
    "run": "runstack.cli._history:run_group",
    "run reconcile": "runstack.cli._integrity:run_reconcile",
    "run diff": "runstack.cli._compare:run_diff",
    "run compare": "runstack.cli._compare:run_compare",
    "run report": "runstack.cli._report:run_report",
    "run tag": "runstack.cli._lifecycle:run_tag",
    "run note": "runstack.cli._lifecycle:run_note",
    "run delete": "runstack.cli._lifecycle:run_delete",
    "run export": "runstack.cli._lifecycle:run_export",
    "run import": "runstack.cli._lifecycle:run_import",
    "step": "runstack.cli._history:step_group",
    "step explain": "runstack.cli._integrity:step_explain",
    "step logs": "runstack.cli._integrity:step_logs",
    "artifact": "runstack.cli._artifacts:artifact",
    "artifact lineage": "runstack.cli._lifecycle:artifact_lineage",
    "gc": "runstack.cli._lifecycle:gc",
    "up": "runstack.cli._dashboard:up",
}


def _load(name: str) -> click.Command:
    """The command at ``name`` in :data:`COMMANDS`, with its sub-commands from the table."""
    import importlib

    module, _, attr = COMMANDS[name].partition(":")
    found = getattr(importlib.import_module(module), attr)
    command = found if isinstance(found, click.Command) else found(name.rsplit(" ", 1)[-1])
    if isinstance(command, click.Group):
        prefix = f"{name} "
        for path in COMMANDS:
            sub = path[len(prefix) :]
            if path.startswith(prefix) and " " not in sub and sub not in command.commands:
                command.add_command(_load(path), sub)
    return command
