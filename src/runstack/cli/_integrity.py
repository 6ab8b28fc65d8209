"""``runstack step explain`` and ``runstack run reconcile``: cache decisions and crashed runs."""

from __future__ import annotations

import click

from runstack.cli._common import echo_json, json_option, stack_option
from runstack.cli._history import find_run, histories


@click.command("explain")
@click.argument("run_name", metavar="RUN")
@click.argument("step_name", metavar="STEP")
@stack_option
@json_option
def step_explain(run_name: str, step_name: str, stack_key: str | None, as_json: bool) -> None:
    """Say why STEP of RUN was reused from the cache, or why it ran.

    A miss is explained against the latest earlier successful execution of the same step:
    which config values, code (the step's and the helpers it calls), constants, packages or
    inputs changed; or that caching was disabled, or that earlier artifacts were missing.
    """
    _, run = find_run(run_name, stack_key)
    explanation = run.get_step(step_name).cache_explanation
    if as_json:
        echo_json(
            {
                "run": explanation.run,
                "step": explanation.step,
                "cached": explanation.cached,
                "reasons": list(explanation.reasons),
                "source_step_id": explanation.source_step_id,
                "source_run": explanation.source_run,
                "compared_with_run": explanation.compared_with_run,
                "components": explanation.components,
            }
        )
        return
    click.echo(str(explanation))


@click.command("reconcile")
@stack_option
@click.option("--dry-run", is_flag=True, help="Only list crashed runs; change nothing.")
@json_option
def run_reconcile(stack_key: str | None, dry_run: bool, as_json: bool) -> None:
    """Record runs whose process died (kill -9, crash, lost host) as failed.

    A run stays "running" in the store when its process is killed. A run started by this
    machine (same boot and PID namespace) is crashed when its process is gone; any other when
    it has sent no heartbeat for 5 minutes. It ends when it was last seen alive. Views only
    show such runs as failed (they never write); starting a run and this command record it.
    """
    from runstack.post_execution._crashes import reconcile

    found = []
    for key, history in histories(stack_key):
        for crash in reconcile(history.store, dry_run=dry_run):
            found.append({"stack": key, "run": crash.run_name, "reason": crash.reason})
    if as_json:
        echo_json(found)
        return
    if not found:
        click.echo("No crashed runs.")
        return
    verb = "Would mark" if dry_run else "Marked"
    for row in found:
        click.echo(f"{verb} run {row['run']!r} (stack {row['stack']}) failed: {row['reason']}")


@click.command("backup")
@click.argument("dest", metavar="DEST", type=click.Path(dir_okay=False))
@click.option(
    "--stack",
    "-s",
    "stack_key",
    metavar="STACK",
    help="Back up this stack's store (default: active).",
)
def metadata_store_backup(dest: str, stack_key: str | None) -> None:
    """Copy the stack's SQLite metadata store into the new file DEST, safely while runs write.

    Copying metadata.db alone can miss recent runs (they may still be in metadata.db-wal);
    this uses SQLite's online backup, and DEST is one self-contained file. Artifacts are not
    copied: copy the artifact store's folder as well to move a whole store. For PostgreSQL or
    MySQL use pg_dump or mysqldump.
    """
    from runstack.cli._common import get_repo

    repo = get_repo()
    stack = repo.get_stack(stack_key) if stack_key else repo.active_stack
    target = stack.metadata_store.backup(dest)
    click.echo(f"Backed up {stack.metadata_store.display_url} to {target}")


@click.command("logs")
@click.argument("run_name", metavar="RUN")
@click.argument("step_name", metavar="STEP")
@stack_option
def step_logs(run_name: str, step_name: str, stack_key: str | None) -> None:
    """Print what STEP of RUN wrote to stdout and stderr and logged while it ran.

    Cached steps did not run and have no logs; `runstack step explain` says which run they
    were reused from.
    """
    _, run = find_run(run_name, stack_key)
    step = run.get_step(step_name)
    text = step.logs
    if text:
        click.echo(text, nl=not text.endswith("\n"))
    elif step.is_cached:
        click.echo(f"Step {step.name!r} was cached in run {run.name!r}; it did not run.", err=True)
    else:
        click.echo(f"Step {step.name!r} in run {run.name!r} wrote no output.", err=True)
