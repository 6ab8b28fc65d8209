"""``runstack pipeline run FILE.py --config CONFIG.yaml``: run a pipeline defined in a file."""

from __future__ import annotations

import sys
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from runstack.cli._common import UserError, echo_json, get_repo

if TYPE_CHECKING:
    from runstack.pipelines import BasePipeline


@click.command("run", short_help="Run the pipeline defined in a Python file.")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--config",
    "-c",
    type=click.Path(exists=True, dir_okay=False),
    help="YAML with step parameters: steps: {SLOT: {parameters: {NAME: VALUE}}}.",
)
@click.option(
    "--pipeline",
    "-p",
    "choice",
    metavar="NAME",
    help="Which pipeline, when FILE defines several (its variable or pipeline name).",
)
@click.option("--run-name", metavar="NAME", help="Name the run (default: <pipeline>-<timestamp>).")
@click.option("--stack", "-s", "stack_key", metavar="STACK", help="Run on STACK, not the active.")
@click.option("--tag", "tag_pairs", metavar="KEY=VALUE", multiple=True, help="Tag the run.")
@click.option("--json", "as_json", is_flag=True, help="Print the finished run as JSON.")
def pipeline_run(
    file: Path,
    config: str | None,
    choice: str | None,
    run_name: str | None,
    stack_key: str | None,
    tag_pairs: tuple[str, ...],
    as_json: bool,
) -> None:
    """Run the pipeline that FILE creates, with step parameters from --config.

    FILE is a Python file that builds a pipeline instance at module level, e.g.
    `training = training_pipeline(importer=importer(), trainer=trainer())`. Code under
    `if __name__ == "__main__":` is not run. Progress goes to stderr; set
    RUNSTACK_PROGRESS=plain|live|off to choose how it is shown.

    \b
    The config file sets step parameters, as BasePipeline.with_config(...) does:
      steps:
        trainer:
          parameters: {epochs: 5, lr: 0.01}
    """
    from runstack.exceptions import StepExecutionError
    from runstack.metadata_stores._tags import parse_tag_args
    from runstack.stack._stack import STARTED_RUNS

    tags = parse_tag_args(tag_pairs)  # before the file is even loaded
    before = len(STARTED_RUNS)
    try:
        found = load_pipelines(file)
    except StepExecutionError as e:  # FILE ran a pipeline at import, and it failed
        _report_failure(e)
    except UserError:
        if len(STARTED_RUNS) == before:
            raise
        found = {}
    if len(STARTED_RUNS) > before:
        # FILE ran its pipeline(s) itself when imported (`p.run()` at module level): that run
        # is what the user asked for; running again would record a second one.
        if config is not None or run_name is not None or tags:
            click.secho(
                f"Warning: --config, --run-name and --tag were not applied: {file} ran its "
                "pipeline itself when loaded.",
                fg="yellow",
                err=True,
            )
        _report_runs(file, STARTED_RUNS[before:], as_json)
        return
    name, pipeline = _pick(found, choice, file)
    if config is not None:
        pipeline = pipeline.with_config(config)
    repo = get_repo()
    stack = repo.get_stack(stack_key or repo.active_stack_key)
    try:
        run = stack.run_pipeline(pipeline, run_name=run_name, tags=tags)
    except StepExecutionError as e:
        _report_failure(e)
    steps = run.steps
    if as_json:
        from runstack.cli._history import _run_row

        echo_json(_run_row(run, stack.key))
        return
    cached = sum(1 for s in steps if s.is_cached)
    click.echo(
        f"Run {run.name} of pipeline {name} {run.status.value} on stack {stack.key}: "
        f"{len(steps)} step(s), {cached} cached. Inspect it with `runstack run show {run.name}`."
    )


def _report_failure(e: Any) -> NoReturn:
    cause = e.__cause__
    if cause is not None:
        lines = traceback.format_exception(type(cause), cause, cause.__traceback__)
        click.echo("".join(lines).rstrip(), err=True)
    click.secho(f"Error: {e}", fg="red", err=True)
    click.echo(
        f"See the run with `runstack run show {e.run_name}`; the step's record keeps "
        f"its traceback (`runstack step show {e.run_name} {e.step_name}`).",
        err=True,
    )
    raise SystemExit(1) from None


def _report_runs(file: Path, runs: list[tuple[str, str]], as_json: bool) -> None:
    """Say what FILE ran when it was imported; exit 1 if any of those runs failed."""
    from runstack.cli._history import _run_row

    repo = get_repo()
    views = [(key, repo.get_history(key).get_run(name)) for key, name in runs]
    if as_json:
        rows = [_run_row(run, key) for key, run in views]
        echo_json(rows[0] if len(rows) == 1 else rows)
    else:
        click.echo(
            f"{file} ran {len(views)} pipeline run(s) itself when loaded (it calls .run() at "
            "module level), so it was not run again:"
        )
        for key, run in views:
            cached = sum(1 for s in run.steps if s.is_cached)
            click.echo(
                f"  Run {run.name} of pipeline {run.pipeline_name} {run.status.value} on stack "
                f"{key}: {len(run.steps)} step(s), {cached} cached."
            )
        click.echo(
            "To have `runstack pipeline run` run it (with --config, --run-name), create the "
            'pipeline at module level and call .run() under `if __name__ == "__main__":`.'
        )
    if any(run.status.value == "failed" for _key, run in views):
        raise SystemExit(1)


def load_pipelines(file: Path) -> dict[str, BasePipeline]:
    """Import FILE as a module and return its module-level pipeline instances by variable."""
    import importlib.util

    from runstack.pipelines import BasePipeline

    path = file.resolve()
    module_name = path.stem if path.stem.isidentifier() else "_runstack_pipeline_file"
    if module_name in sys.modules:
        # Keep the user's module name when it is free: it is recorded in artifact types.
        module_name = f"_runstack_file_{module_name}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise UserError(f"Cannot load {file} as Python; give a .py file.")
    module = importlib.util.module_from_spec(spec)
    folder = str(path.parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)  # so the file can import its neighbours
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as e:
        sys.modules.pop(module_name, None)
        from runstack.exceptions import RunstackError, StepExecutionError

        if isinstance(e, StepExecutionError):
            raise  # a run FILE started itself failed: reported as the run's failure

        if isinstance(e, RunstackError):
            raise UserError(f"{file}: {e}") from None  # e.g. a definition error
        tb = traceback.format_exception(type(e), e, e.__traceback__)
        click.echo("".join(tb).rstrip(), err=True)
        raise UserError(
            f"{file} raised {type(e).__name__} while loading (traceback above)."
        ) from None
    found: dict[str, BasePipeline] = {}
    seen: set[int] = set()
    for var, value in vars(module).items():
        if isinstance(value, BasePipeline) and id(value) not in seen:
            seen.add(id(value))
            found[var] = value
    if not found:
        classes = [
            v.NAME
            for v in vars(module).values()
            if isinstance(v, type) and issubclass(v, BasePipeline) and v is not BasePipeline
        ]
        hint = (
            f" It defines pipeline(s) {classes}; create one with its steps at module level, e.g. "
            f"`p = {classes[0]}(...)`."
            if classes
            else " Define one with @pipeline and create an instance at module level."
        )
        raise UserError(f"{file} creates no pipeline instance.{hint}")
    return found


def _pick(found: dict[str, Any], choice: str | None, file: Path) -> tuple[str, Any]:
    if choice is None:
        if len(found) == 1:
            var, p = next(iter(found.items()))
            return p.NAME, p
        listed = ", ".join(f"{var} ({p.NAME})" for var, p in found.items())
        raise UserError(f"{file} creates several pipelines: {listed}. Pick one with --pipeline.")
    for var, p in found.items():
        if choice in (var, p.NAME):
            return p.NAME, p
    listed = ", ".join(f"{var} ({p.NAME})" for var, p in found.items())
    raise UserError(f"{file} has no pipeline {choice!r}; it creates {listed}.")
