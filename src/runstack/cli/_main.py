"""The ``runstack`` command group: global options, error handling, ``init`` and ``version``."""

from __future__ import annotations

from typing import Any

import click

from runstack import __version__
from runstack.cli._common import CliState, UserError


class RunstackGroup(click.Group):
    """Turns runstack errors into a one-line message and exit status 1, never a traceback.

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


def _register_commands() -> None:
    from runstack.cli._artifacts import artifact
    from runstack.cli._compare import run_compare, run_diff
    from runstack.cli._dashboard import up
    from runstack.cli._history import pipeline_group, run_group, step_group
    from runstack.cli._integrity import (
        metadata_store_backup,
        run_reconcile,
        step_explain,
        step_logs,
    )
    from runstack.cli._pipeline_run import pipeline_run
    from runstack.cli._report import run_report
    from runstack.cli._stacks import component_groups, stack

    main.add_command(stack)
    for group in component_groups():
        if group.name == "metadata-store":
            group.add_command(metadata_store_backup)
        main.add_command(group)
    pipeline_group.add_command(pipeline_run)
    run_group.add_command(run_reconcile)
    run_group.add_command(run_diff)
    run_group.add_command(run_compare)
    run_group.add_command(run_report)
    step_group.add_command(step_explain)
    step_group.add_command(step_logs)
    main.add_command(pipeline_group)
    main.add_command(run_group)
    main.add_command(step_group)
    main.add_command(artifact)
    main.add_command(up)


_register_commands()
