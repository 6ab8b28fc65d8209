"""``runstack run tag|note|delete|export|import``, ``runstack gc`` and ``artifact lineage``:
curate, prune and move recorded history."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from runstack.cli._common import console, echo_json, get_repo, json_option, stack_option
from runstack.cli._history import _short_type, find_run

if TYPE_CHECKING:
    from rich.text import Text
    from rich.tree import Tree


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


def _text(label: str) -> Text:
    from rich.text import Text

    return Text(label)  # names are shown as they are, never read as rich markup


def _step_label(ref: dict[str, Any]) -> str:
    return f"{ref['step']} @ {ref['run']} ({ref['status']})"


def _upstream_tree(node: dict[str, Any], tree: Tree) -> None:
    label = f"output {node.get('output')!r} #{node['id']} ({_short_type(node['data_type'])})"
    if "input" in node:
        label = f"input {node['input']!r} <- {label}"
    if "producer" in node:
        label += f" made by {_step_label(node['producer'])}"
    branch = tree.add(_text(label + (" (see above)" if node.get("shown_above") else "")))
    for child in node.get("inputs", []):
        _upstream_tree(child, branch)


def _downstream_tree(node: dict[str, Any], tree: Tree) -> None:
    label = f"#{node['id']} ({_short_type(node['data_type'])})"
    if "output" in node:
        label = f"output {node['output']!r} {label}"
    branch = tree.add(_text(label + (" (see above)" if node.get("shown_above") else "")))
    for c in node.get("consumers", []):
        step = branch.add(_text(f"consumed as {c['input']!r} by {_step_label(c)}"))
        for out in c["outputs"]:
            _downstream_tree(out, step)
    for r in node.get("reused_by", []):
        branch.add(_text(f"reused from the cache by {_step_label(r)}"))


@click.command("lineage", short_help="Where an output came from and what used it since.")
@click.argument("run_name", metavar="RUN")
@click.argument("step_name", metavar="STEP")
@click.argument("output", required=False)
@stack_option
@json_option
def artifact_lineage(
    run_name: str, step_name: str, output: str | None, stack_key: str | None, as_json: bool
) -> None:
    """Print the lineage of output OUTPUT of STEP in RUN, both ways.

    Upstream: the step that made it and, recursively, the artifacts that step consumed.
    Downstream: every step, in any run, that consumed it (cached ones too), what those steps
    made, and the steps that reused it from the cache. OUTPUT may be left out when the step
    has one output.
    """
    from rich.tree import Tree

    from runstack.cli._artifacts import _find

    art = _find(run_name, step_name, output, stack_key)
    data = art.lineage()
    if as_json:
        echo_json(data)
        return
    up = Tree("[bold]Upstream[/] (what it was made from)")
    _upstream_tree(data["upstream"], up)
    down = Tree("[bold]Downstream[/] (what used it)")
    _downstream_tree(data["downstream"], down)
    out = console()
    out.print(up)
    out.print(down)
