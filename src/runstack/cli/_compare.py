"""``runstack run diff`` and ``runstack run compare``: what differs between runs.

Both take run names or, with ``--pipeline P``, ``latest`` and ``latest~N`` (the pipeline's
newest run and the one N runs before it). The work is ``Repository().diff`` and
``Repository().compare``; this module only prints.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from runstack.cli._common import console, echo_json, get_repo, json_option, stack_option

if TYPE_CHECKING:
    from runstack.post_execution import (
        ArtifactDiff,
        OutputDiff,
        RunComparison,
        RunDiff,
        StepDiff,
    )

_BEFORE = "red"
_AFTER = "green"

pipeline_option = click.option(
    "--pipeline",
    "-p",
    metavar="PIPELINE",
    help="Resolve run names in this pipeline; needed for `latest` and `latest~N`.",
)


@click.command("diff", short_help="Show what differs between two runs.")
@click.argument("run_a", metavar="RUN_A")
@click.argument("run_b", metavar="RUN_B")
@pipeline_option
@click.option(
    "--all",
    "show_all",
    is_flag=True,
    help="Show every step and output, not only those that differ.",
)
@click.option(
    "--read-limit",
    metavar="BYTES",
    type=click.IntRange(min=0),
    help="Read at most this many bytes of any one artifact to describe how it differs "
    "(default 64 MiB; 0 compares content hashes only).",
)
@stack_option
@json_option
def run_diff(
    run_a: str,
    run_b: str,
    pipeline: str | None,
    show_all: bool,
    read_limit: int | None,
    stack_key: str | None,
    as_json: bool,
) -> None:
    """Show what differs from run RUN_A to run RUN_B, step by step.

    For each step: whether it ran in both, its status, every part of its cache key that
    differs (code, helper functions, constants, package versions, parameters, input data,
    materializers) and, for each output whose content differs, how: values, array shape and
    statistics, table rows, columns and column statistics. Pickle-based artifacts are never
    opened; they show their content hashes.

    \b
    Examples:
      runstack run diff my-run-1 my-run-2
      runstack run diff --pipeline training latest~1 latest
      runstack run diff RUN_A RUN_B --json
    """
    diff = get_repo().diff(
        run_a, run_b, pipeline=pipeline, stack_key=stack_key, read_limit=read_limit
    )
    if as_json:
        data = diff.to_dict()
        if not show_all:
            data["steps"] = [_differing_outputs(s) for s in data["steps"] if s["differs"]]
        echo_json(data)
        return
    _print_diff(diff, show_all)


def _differing_outputs(step: dict[str, Any]) -> dict[str, Any]:
    return {**step, "outputs": [o for o in step["outputs"] if o["differs"]]}


def _print_diff(diff: RunDiff, show_all: bool) -> None:
    from rich.table import Table
    from rich.text import Text

    out = console()
    title = Text.assemble(
        "Run ", (diff.a.name, _BEFORE), " -> ", (diff.b.name, _AFTER), style="bold"
    )
    out.print(title)
    if not diff.same_pipeline:
        out.print(
            f"Runs of different pipelines ({diff.a.pipeline} -> {diff.b.pipeline}): steps are "
            "matched by slot name.",
            style="yellow",
        )
    if diff.identical and not show_all:
        out.print(
            "No differences: same steps, code, parameters, inputs and outputs. "
            "(--all shows every step.)",
            style="dim",
        )
        return
    table = Table(header_style="bold", title_justify="left")
    table.add_column("step", overflow="fold")
    table.add_column("what", overflow="fold")
    table.add_column(f"{diff.a.name} (before)", overflow="fold", style=_BEFORE)
    table.add_column(f"{diff.b.name} (after)", overflow="fold", style=_AFTER)
    steps = diff.steps if show_all else diff.differences
    for i, s in enumerate(steps):
        rows = _step_rows(s, show_all)
        for j, (what, before, after, dim) in enumerate(rows):
            style = "dim" if dim else ""
            table.add_row(
                Text(s.name if j == 0 else "", style="bold"),
                Text(what, style=style),
                Text(before, style="dim" if dim else _BEFORE),
                Text(after, style="dim" if dim else _AFTER),
                end_section=j == len(rows) - 1 and i < len(steps) - 1,
            )
    out.print(table)
    shown = len(steps)
    if not show_all and shown < len(diff.steps):
        out.print(
            f"{len(diff.steps) - shown} step(s) do not differ; --all shows them.", style="dim"
        )


Row = tuple[str, str, str, bool]  # what, before, after, unchanged (dimmed)


def _text(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        # 1.0 stays "1.0": a float parameter must not read as an int.
        return f"{value:.1f}" if value.is_integer() and abs(value) < 1e15 else f"{value:.6g}"
    return str(value)


def _step_rows(s: StepDiff, show_all: bool) -> list[Row]:
    if s.presence != "both":
        here = ("present", "—") if s.presence == "only_a" else ("—", "present")
        return [("step", *here, False)]
    rows: list[Row] = []
    outcome_changed = s.status.changed
    if outcome_changed or show_all:
        rows.append(("status", s.status.before, s.status.after, not outcome_changed))
    if show_all or (s.cached.changed and s.differs):
        ran = {True: "cached", False: "ran"}
        rows.append(
            ("cached or ran", ran[s.cached.before], ran[s.cached.after], not s.cached.changed)
        )
    if s.entrypoint.changed:
        rows.append(("entrypoint", s.entrypoint.before, s.entrypoint.after, False))
    for c in s.changes:
        what = c.component.replace("_", " ") + (f" {c.name}" if c.name else "")
        rows.append((what, _text(c.before), _text(c.after), False))
    for o in s.outputs:
        if o.differs or show_all:
            rows += _output_rows(o)
    rows += [("note", n, "", True) for n in s.notes]
    return rows or [("", "no differences", "", True)]


def _output_rows(o: OutputDiff) -> list[Row]:
    head = f"output {o.name}"
    if o.presence != "both":
        here = ("present", "—") if o.presence == "only_a" else ("—", "present")
        return [(head, *here, False)]
    if o.same:
        return [(head, "same content", "same content", True)]
    rows: list[Row] = []
    if o.data_type.changed:
        rows.append((f"{head} type", o.data_type.before, o.data_type.after, False))
    rows += _detail_rows(head, o.detail)
    return rows


def _detail_rows(head: str, d: ArtifactDiff | None) -> list[Row]:
    from runstack.post_execution import ArrayDiff, OpaqueDiff, TableDiff, ValueDiff

    rows: list[Row] = []
    if isinstance(d, ValueDiff):
        if d.value is not None:
            rows.append((head, _text(d.value.before), _text(d.value.after), False))
        elif d.length is not None:
            rows.append((f"{head} length", _text(d.length.before), _text(d.length.after), False))
        for what, keys in (("added", d.keys_added), ("removed", d.keys_removed)):
            if keys:
                rows.append((f"{head} keys {what}", "", ", ".join(keys), False))
    elif isinstance(d, ArrayDiff):
        for what, delta in (("shape", d.shape), ("dtype", d.dtype), *d.stats.items()):
            if delta.changed:
                rows.append((f"{head} {what}", _text(delta.before), _text(delta.after), False))
        if not rows:
            rows.append((head, "values differ", "(same shape, dtype, statistics)", False))
    elif isinstance(d, TableDiff):
        if d.rows.changed:
            rows.append((f"{head} rows", _text(d.rows.before), _text(d.rows.after), False))
        rows += [(f"{head} column {c}", "—", "added", False) for c in d.columns_added]
        rows += [(f"{head} column {c}", "present", "removed", False) for c in d.columns_removed]
        rows += [
            (f"{head} column {c} type", t.before, t.after, False)
            for c, t in d.columns_retyped.items()
        ]
        for col, stats in d.column_stats.items():
            rows += [
                (f"{head} {col}.{k}", _text(v.before), _text(v.after), False)
                for k, v in stats.items()
            ]
        if not rows:
            rows.append((head, "values differ", "(same schema and statistics)", False))
    elif isinstance(d, OpaqueDiff):
        rows.append((f"{head} hash", _text(d.hashes.before), _text(d.hashes.after), False))
    if d is not None and d.note:
        rows.append((f"{head} note", d.note, "", True))
    return rows


@click.command("compare", short_help="Runs side by side: parameters and metrics.")
@click.argument("runs", metavar="[RUN]...", nargs=-1)
@pipeline_option
@click.option(
    "--last",
    "-n",
    metavar="N",
    type=click.IntRange(min=1),
    default=10,
    show_default=True,
    help="With --pipeline and no RUN: compare the pipeline's N newest runs.",
)
@stack_option
@json_option
def run_compare(
    runs: tuple[str, ...], pipeline: str | None, last: int, stack_key: str | None, as_json: bool
) -> None:
    """Compare runs side by side, one row per run: the parameters whose values differ
    between them and every scalar output (ints, floats, bools, short strings: the metrics).

    \b
    Examples:
      runstack run compare --pipeline training            (its 10 newest runs)
      runstack run compare run-1 run-2 run-3
      runstack run compare --pipeline training latest~2 latest~1 latest --json
    """
    repo = get_repo()
    if not runs:
        if pipeline is None:
            raise click.UsageError(
                "Name the runs to compare (`runstack run compare RUN RUN ...`), or give "
                "--pipeline P to compare its newest runs."
            )
        found = repo.get_pipeline(pipeline, stack_key).get_runs(limit=last, newest_first=True)
        runs = tuple(r.name for r in reversed(found))
    comparison = repo.compare(*runs, pipeline=pipeline, stack_key=stack_key)
    if as_json:
        echo_json(comparison.to_dict())
        return
    _print_comparison(comparison)


def _print_comparison(comparison: RunComparison) -> None:
    from rich.table import Table
    from rich.text import Text

    from runstack.cli._common import status_style

    table = Table(header_style="bold", title="Runs compared", title_justify="left")
    table.add_column("run")
    table.add_column("status")
    for c in comparison.parameters:
        table.add_column(c, overflow="fold")
    for c in comparison.metrics:
        table.add_column(c, overflow="fold", header_style="bold cyan")
    for row in comparison.rows:
        table.add_row(
            row.run.name,
            Text(row.run.status, style=status_style(row.run.status)),
            *(_text(row.parameters.get(c)) for c in comparison.parameters),
            *(Text(_text(row.metrics.get(c)), style="cyan") for c in comparison.metrics),
        )
    out = console()
    out.print(table)
    if not comparison.parameters:
        out.print("Every parameter has the same value in these runs.", style="dim")
    if not comparison.metrics:
        out.print(
            "No scalar outputs (int, float, bool or short str) to show as metrics.", style="dim"
        )
