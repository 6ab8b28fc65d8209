"""``runstack run tag|note|delete|export|import``, ``runstack gc`` and ``artifact lineage``:
curate, prune and move recorded history."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from runstack.cli._common import console, echo_json, get_repo, json_option, stack_option, warn
from runstack.cli._history import _short_type, find_run

if TYPE_CHECKING:
    from rich.text import Text
    from rich.tree import Tree

    from runstack.lifecycle._retention import Removal


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
    now = get_repo().get_history(key).store.set_tags(run.id, tags, remove)
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
    get_repo().get_history(key).store.set_note(run.id, note)
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


def _human(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1024 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


def _report(removal: Removal, as_json: bool) -> None:
    if as_json:
        echo_json(removal.as_dict())
        return
    verb = "Would remove (dry run; nothing changed)" if removal.dry_run else "Removed"
    click.echo(f"{verb}:")
    click.echo(
        f"  runs: {len(removal.runs)}" + (f" ({', '.join(removal.runs)})" if removal.runs else "")
    )
    click.echo(f"  steps: {removal.steps}")
    art = sum(b for _, b in removal.artifacts)
    click.echo(f"  artifacts: {len(removal.artifacts)} ({_human(art)})")
    click.echo(f"  step logs: {len(removal.logs)} ({_human(sum(b for _, b in removal.logs))})")
    if removal.orphans:
        orphan_bytes = _human(sum(b for _, b in removal.orphans))
        click.echo(f"  orphaned folders: {len(removal.orphans)} ({orphan_bytes})")
    click.echo(f"  total: {_human(removal.bytes)}")
    for uri, size in (*removal.artifacts, *removal.logs, *removal.orphans):
        click.echo(f"    {uri} ({_human(size)})")
    for run, steps in sorted(removal.kept.items()):
        click.echo(
            f"Kept run {run}'s step(s) {', '.join(steps)}: runs that are kept still use them."
        )
    for run in removal.running:
        click.echo(f"Not touched: run {run} is running.")
    for uri in removal.refused:
        click.echo(f"Left in place (outside the artifact store's root): {uri}")


@click.command("delete", short_help="Delete runs and the artifacts only they use.")
@click.argument("run_names", metavar="RUN...", nargs=-1, required=True)
@click.option("--dry-run", is_flag=True, help="Only print what would be removed.")
@stack_option
@json_option
def run_delete(
    run_names: tuple[str, ...], dry_run: bool, stack_key: str | None, as_json: bool
) -> None:
    """Delete runs RUN...: their records, then their artifacts and logs.

    Steps that runs you keep still use (an artifact they consumed or reused from the cache)
    are kept, with their run record, so lineage and `step explain` stay whole. Running runs
    are never deleted.
    """
    from runstack.exceptions import RunstackError
    from runstack.lifecycle._retention import remove_runs
    from runstack.models import ExecutionStatus

    repo = get_repo()
    by_stack: dict[str, list[int]] = {}
    for name in run_names:  # every name is found before anything is deleted
        key, run_id = repo.find_run_stack(name, stack_key)
        by_stack.setdefault(key, []).append(run_id)
    stacks = {key: repo.get_stack(key) for key in by_stack}
    running = [
        r.name
        for key, ids in by_stack.items()
        for r in stacks[key].metadata_store.runs_by_ids(ids)
        if r.status is ExecutionStatus.RUNNING
    ]
    if running:
        raise RunstackError(
            f"Run(s) {running} are running; nothing was deleted. Wait for them to end, or "
            "record crashed ones failed with `runstack run reconcile`."
        )
    removals = [
        remove_runs(stacks[key].metadata_store, stacks[key].artifact_store, ids, dry_run=dry_run)
        for key, ids in by_stack.items()
    ]
    for removal in removals:
        _report(removal, as_json)


@click.command("gc", short_help="Delete old runs and unused artifacts (retention).")
@click.option(
    "--keep-last",
    type=click.IntRange(min=0),
    metavar="N",
    help="Keep the N newest selected runs of each pipeline.",
)
@click.option(
    "--older-than", metavar="AGE", help="Only runs started more than AGE ago (30d, 12h, 2w)."
)
@click.option(
    "--status", type=click.Choice(["completed", "failed"]), help="Only runs with this status."
)
@click.option("--pipeline", "-p", metavar="P", help="Only runs of pipeline P.")
@click.option(
    "--keep-tag",
    "keep_tags",
    metavar="KEY=VALUE",
    multiple=True,
    help="Never delete runs with this tag (repeatable).",
)
@click.option(
    "--grace",
    default="6h",
    show_default=True,
    metavar="AGE",
    help="Orphaned and half-written folders are removed once this old.",
)
@click.option(
    "--no-orphans",
    is_flag=True,
    help="Do not look for folders no record names (e.g. when stores of other "
    "repositories write into the same artifact store).",
)
@click.option("--dry-run", is_flag=True, help="Only print what would be removed.")
@stack_option
@json_option
def gc(
    keep_last: int | None,
    older_than: str | None,
    status: str | None,
    pipeline: str | None,
    keep_tags: tuple[str, ...],
    grace: str,
    no_orphans: bool,
    dry_run: bool,
    stack_key: str | None,
    as_json: bool,
) -> None:
    """Delete runs selected by --keep-last, --older-than and --status (narrowed by
    --pipeline, spared by --keep-tag), then the artifacts no kept record uses.

    An artifact that a kept step consumed or reused from the cache is kept, with the step
    that produced it. Folders of the artifact store that no record names (left by a crash)
    and `.partial-*` staging folders are removed once older than --grace. Running runs are
    never touched. Without --keep-last, --older-than or --status no run is selected.
    """
    from runstack.lifecycle._retention import parse_duration, remove_runs, select_runs
    from runstack.metadata_stores._tags import parse_tag_args

    spared = parse_tag_args(keep_tags)
    age = parse_duration(older_than) if older_than else None
    grace_period = parse_duration(grace)
    repo = get_repo()
    key = stack_key or repo.active_stack_key
    stack = repo.get_stack(key)
    runs = select_runs(
        stack.metadata_store,
        keep_last=keep_last,
        older_than=age,
        status=status,
        pipeline=pipeline,
        keep_tags=spared,
    )
    path = stack.artifact_store.path

    def known_uris() -> set[str] | None:
        from runstack.exceptions import RunstackError

        try:
            return repo.artifact_uris_of(path)
        except RunstackError as e:
            # Without every store's records, any folder could look orphaned: sweep none.
            warn(f"Orphaned folders were not looked for: {e}")
            return None

    removal = remove_runs(
        stack.metadata_store,
        stack.artifact_store,
        [r.id for r in runs],
        dry_run=dry_run,
        known_uris=None if no_orphans else known_uris,
        grace=grace_period,
    )
    _report(removal, as_json)


@click.command("export", short_help="Write runs and their artifacts to a bundle file.")
@click.argument("run_names", metavar="RUN...", nargs=-1)
@click.option(
    "--output",
    "-o",
    required=True,
    type=click.Path(dir_okay=False),
    help="Bundle file to write (.tar).",
)
@click.option("--pipeline", "-p", metavar="P", help="With --all: every run of pipeline P.")
@click.option("--all", "all_runs", is_flag=True, help="Export every run of --pipeline.")
@stack_option
@json_option
def run_export(
    run_names: tuple[str, ...],
    output: str,
    pipeline: str | None,
    all_runs: bool,
    stack_key: str | None,
    as_json: bool,
) -> None:
    """Export runs RUN... (or --pipeline P --all) with the artifacts they need to a bundle.

    The bundle holds the runs' records (steps, parameters, cache keys and components, logs,
    artifact records, tags and notes), every artifact file they use (also those reused from
    runs not exported), SHA-256 hashes and the schema revision. `runstack run import` reads it
    into any stack.
    """
    from runstack.lifecycle._bundle import export_bundle

    if bool(run_names) == bool(pipeline and all_runs) or (pipeline and not all_runs):
        raise click.UsageError("Give run names, or --pipeline P --all (not both).")
    repo = get_repo()
    if run_names:
        found = [repo.find_run_stack(name, stack_key) for name in run_names]
        keys = sorted({key for key, _ in found})
        if len(keys) > 1:
            raise click.UsageError(
                f"The runs are on several stacks ({keys}); export from one at a time (--stack)."
            )
        key, ids = keys[0], [run_id for _, run_id in found]
    else:
        assert pipeline is not None
        key = stack_key or repo.active_stack_key
        p = repo.get_pipeline(pipeline, key)
        ids = [r.id for r in p.runs]
    stack = repo.get_stack(key)
    done = export_bundle(stack.metadata_store, stack.artifact_store, ids, output)
    data = {
        "bundle": str(done.path),
        "runs": done.runs,
        "artifacts": done.artifacts,
        "bytes": done.bytes,
    }
    if as_json:
        echo_json(data)
        return
    click.echo(
        f"Exported {len(done.runs)} run(s) with {done.artifacts} artifact(s) "
        f"({_human(done.bytes)}) to {done.path}"
    )


@click.command("import", short_help="Read a bundle's runs into the active stack.")
@click.argument("bundle", type=click.Path(exists=True, dir_okay=False))
@stack_option
@json_option
def run_import(bundle: str, stack_key: str | None, as_json: bool) -> None:
    """Import the runs of BUNDLE (from `runstack run export`) into the active stack.

    Hashes are verified before anything is written; ids and artifact locations are remapped
    to this stack's stores; cache keys are kept, so imported runs serve cache hits. Importing
    the same bundle again adds nothing; a run of the same name with different content is an
    error that names it.
    """
    from runstack.lifecycle._bundle import import_bundle

    repo = get_repo()
    stack = repo.get_stack(stack_key or repo.active_stack_key)
    done = import_bundle(stack.metadata_store, stack.artifact_store, bundle)
    if as_json:
        echo_json(
            {
                "imported": done.imported,
                "already_present": done.present,
                "steps": done.steps,
                "artifacts": done.artifacts,
                "bytes": done.bytes,
            }
        )
        return
    if not done.imported and not done.steps:
        click.echo(f"Nothing to import: all {len(done.present)} run(s) are already here.")
        return
    click.echo(
        f"Imported {len(done.imported)} run(s), {done.steps} step(s), {done.artifacts} "
        f"artifact(s) ({_human(done.bytes)}) into stack {stack.key}."
    )
    if done.present:
        click.echo(f"Already here, unchanged: {', '.join(done.present)}")
