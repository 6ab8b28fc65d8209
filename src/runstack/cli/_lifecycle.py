"""``runstack run tag|note|delete|export|import``, ``runstack gc`` and ``artifact lineage``:
curate, prune and move recorded history."""

from __future__ import annotations

import click

from runstack.cli._common import echo_json, get_repo, json_option, stack_option
from runstack.cli._history import find_run


@click.command("tag", short_help="Add, change or remove tags of a run.")
@click.argument("run_name", metavar="RUN")
@click.argument("pairs", metavar="KEY=VALUE...", nargs=-1)
@click.option("--remove", "-r", "remove", metavar="KEY", multiple=True, help="Drop tag KEY.")
@stack_option
@json_option
def run_tag(
    run_name: str,
    pairs: tuple[str, ...],
    remove: tuple[str, ...],
    stack_key: str | None,
    as_json: bool,
) -> None:
    """Set tags KEY=VALUE on run RUN (replacing a key's value) and drop --remove KEYs.

    Tags filter listings: `runstack run list --tag exp=lr-sweep`,
    `pipeline.get_runs(tags={"exp": "lr-sweep"})`.
    """
    from runstack.metadata_stores._tags import parse_tag_args

    tags = parse_tag_args(pairs)  # checked before anything is written
    if not tags and not remove:
        raise click.UsageError("Give KEY=VALUE tags to set and/or --remove KEY.")
    key, run = find_run(run_name, stack_key)
    now = get_repo().get_stack(key).metadata_store.set_tags(run.id, tags, remove)
    if as_json:
        echo_json({"run": run.name, "stack": key, "tags": now})
        return
    shown = ", ".join(f"{k}={v}" for k, v in now.items()) or "(none)"
    click.echo(f"Run {run.name} tags: {shown}")


@click.command("note", short_help="Set or clear the note of a run.")
@click.argument("run_name", metavar="RUN")
@click.argument("text")
@stack_option
def run_note(run_name: str, text: str, stack_key: str | None) -> None:
    """Set the note of run RUN to TEXT ("" clears it); `run show` prints it."""
    from runstack.metadata_stores._tags import check_note

    note = check_note(text)
    key, run = find_run(run_name, stack_key)
    get_repo().get_stack(key).metadata_store.set_note(run.id, note)
    click.echo(f"Run {run.name}: note {'set' if note else 'cleared'}.")
