"""``runstack pipeline list``, ``run list|show`` and ``step show``: browse recorded history."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import click

from runstack.cli._common import (
    duration_of,
    echo_json,
    fmt_duration,
    fmt_time,
    get_repo,
    json_option,
    print_fields,
    print_table,
    stack_option,
    warn,
)

if TYPE_CHECKING:
    from runstack.post_execution import History, RunView


def histories(stack_key: str | None) -> Iterator[tuple[str, History]]:
    """(stack, history) for each stack to read; an unreachable store is skipped with a warning
    unless it was asked for by name."""
    from runstack.exceptions import RunstackError, StoreUnusableError

    repo = get_repo()
    for key in repo.history_stack_keys(stack_key):
        try:
            yield key, repo.get_stack(key).history
        except RunstackError as e:
            # A store that is there but broken (corrupted, read-only, not a database) is an
            # error: skipping it would print "No runs yet." over a history that exists.
            if stack_key is not None or isinstance(e, StoreUnusableError):
                raise
            warn(f"Skipping stack {key!r}: {e}")


def find_run(name: str, stack_key: str | None) -> tuple[str, RunView]:
    """A run by name from the first stack that has it."""
    from runstack.exceptions import RunNotFoundError
    from runstack.post_execution._refs import run_not_found

    searched = []
    for key, history in histories(stack_key):
        searched.append((key, history))
        try:
            return key, history.get_run(name)
        except RunNotFoundError:
            continue
    raise run_not_found(name, [h for _, h in searched], [k for k, _ in searched])


# -- pipeline --------------------------------------------------------------------------------


@click.group("pipeline")
def pipeline_group() -> None:
    """List recorded pipelines, or run one from a Python file."""


@pipeline_group.command("list", short_help="List pipelines that have run.")
@stack_option
@json_option
def pipeline_list(stack_key: str | None, as_json: bool) -> None:
    """List pipelines that have run, with their latest run."""
    rows = []
    for key, history in histories(stack_key):
        for p in history.get_pipelines():
            latest = p.get_runs(limit=1, newest_first=True)
            last = latest[0] if latest else None
            rows.append(
                {
                    "name": p.name,
                    "stack": key,
                    "first_run_at": p.created_at,
                    "runs": len(p.get_run_names()),
                    "latest_run": last.name if last else None,
                    "latest_status": last.status.value if last else None,
                    "latest_started_at": last.start_time if last else None,
                }
            )
    if as_json:
        echo_json(rows)
        return
    print_table(
        ["pipeline", "stack", "runs", "latest run", "status", "started"],
        [
            [
                r["name"],
                r["stack"],
                r["runs"],
                r["latest_run"],
                r["latest_status"],
                fmt_time(r["latest_started_at"]),
            ]
            for r in rows
        ],
        title="Pipelines",
        styles={"status": "status"},
        empty="No pipeline has run yet. Run one with `runstack pipeline run FILE.py`.",
    )


# -- run -------------------------------------------------------------------------------------


@click.group("run")
def run_group() -> None:
    """List and inspect recorded runs."""


def _run_row(run: RunView, stack: str) -> dict[str, Any]:
    steps = run.steps
    return {
        "name": run.name,
        "pipeline": run.pipeline_name,
        "stack": stack,
        "status": run.status.value,
        "start_time": run.start_time,
        "end_time": run.end_time,
        "duration": duration_of(run.start_time, run.end_time),
        "steps": len(steps),
        "cached_steps": sum(1 for s in steps if s.is_cached),
        "error": run.error,
    }


@run_group.command("list", short_help="List runs, newest first.")
@click.argument("pipeline", required=False)
@click.option(
    "--status",
    type=click.Choice(["running", "completed", "failed"]),
    help="Only runs with this status.",
)
@click.option(
    "--last",
    "-n",
    "last",
    metavar="N",
    type=click.IntRange(min=1),
    default=20,
    show_default=True,
    help="Show the N most recent runs.",
)
@click.option("--all", "show_all", is_flag=True, help="Show every run (overrides --last).")
@stack_option
@json_option
def run_list(
    pipeline: str | None,
    status: str | None,
    last: int,
    show_all: bool,
    stack_key: str | None,
    as_json: bool,
) -> None:
    """List runs, newest first: of PIPELINE, or of every pipeline.

    Filtering and limiting happen in the metadata store, so this stays quick with many runs.
    """
    from runstack.exceptions import PipelineNotFoundError

    limit = None if show_all else last + 1  # one more than shown, to know if there are more
    found: list[tuple[str, RunView]] = []
    for key, history in histories(stack_key):
        if pipeline is not None:
            try:
                pipelines = [history.get_pipeline(pipeline)]
            except PipelineNotFoundError:
                continue
        else:
            pipelines = history.get_pipelines()
        for p in pipelines:
            found.extend(
                (key, r) for r in p.get_runs(status=status, limit=limit, newest_first=True)
            )
    if pipeline is not None and not found and not _pipeline_exists(pipeline, stack_key):
        get_repo().get_pipeline(pipeline, stack_key)  # raises with the known names
    found.sort(key=lambda kr: kr[1].start_time, reverse=True)
    more = not show_all and len(found) > last
    shown = found if show_all else found[:last]
    rows = [_run_row(run, key) for key, run in shown]
    if as_json:
        echo_json(rows)
        return
    print_table(
        ["run", "pipeline", "stack", "status", "started", "duration", "steps"],
        [
            [
                r["name"],
                r["pipeline"],
                r["stack"],
                r["status"],
                fmt_time(r["start_time"]),
                fmt_duration(r["duration"]),
                f"{r['steps']}" + (f" ({r['cached_steps']} cached)" if r["cached_steps"] else ""),
            ]
            for r in rows
        ],
        title="Runs (newest first)",
        styles={"status": "status"},
        empty="No runs match." if status or pipeline else "No runs yet.",
    )
    if more:
        click.secho(f"Showing the latest {last}; use --last N or --all for more.", dim=True)


def _pipeline_exists(name: str, stack_key: str | None) -> bool:
    from runstack.exceptions import PipelineNotFoundError

    for _key, history in histories(stack_key):
        try:
            history.get_pipeline(name)
            return True
        except PipelineNotFoundError:
            continue
    return False


@run_group.command("show", short_help="Show a run and its steps.")
@click.argument("run_name", metavar="RUN")
@stack_option
@json_option
def run_show(run_name: str, stack_key: str | None, as_json: bool) -> None:
    """Show run RUN: its status, parameters and metrics (scalar outputs), and each step with
    status, cache use, duration and outputs."""
    from runstack.post_execution import run_to_dict

    key, run = find_run(run_name, stack_key)
    data = {**run_to_dict(run), "stack": key}
    if as_json:
        echo_json(data)
        return
    print_fields(
        [
            ("pipeline", data["pipeline"]),
            ("stack", key),
            ("status", data["status"]),
            ("started", fmt_time(run.start_time)),
            ("finished", fmt_time(run.end_time)),
            ("duration", fmt_duration(data["duration"])),
            ("error", data["error"]),
        ],
        title=f"Run {run.name}",
    )
    print_table(
        ["step", "entrypoint", "status", "cached", "duration", "outputs"],
        [
            [
                s["name"],
                s["entrypoint"],
                s["status"],
                "yes" if s["cached"] else "",
                fmt_duration(s["duration"]),
                "\n".join(f"{n}: {_short_type(o['data_type'])}" for n, o in s["outputs"].items()),
            ]
            for s in data["steps"]
        ],
        styles={"status": "status"},
        empty="This run has no recorded steps.",
    )
    _print_values("parameter", data["parameters"])
    _print_values("metric", data["metrics"])
    failed = [s for s in data["steps"] if s["error"]]
    for s in failed:
        click.secho(f"Step {s['name']} failed: {s['error']}", fg="red")
        click.echo(f"  See its traceback with `runstack step show {run.name} {s['name']}`.")


def _print_values(kind: str, by_step: dict[str, dict[str, Any]]) -> None:
    """Parameters or metrics of a run, one row per ``step.name``."""
    rows = [[f"{step}.{name}", repr(v)] for step, vs in by_step.items() for name, v in vs.items()]
    if rows:
        print_table([kind, "value"], rows)


def _short_type(path: str) -> str:
    """``builtins.int`` -> ``int``; ``pandas.core.frame.DataFrame`` -> ``DataFrame``."""
    return path.rsplit(".", 1)[-1]


# -- step ------------------------------------------------------------------------------------


@click.group("step")
def step_group() -> None:
    """Inspect one step of a recorded run."""


@step_group.command("show", short_help="Show a step: parameters, inputs, outputs, error.")
@click.argument("run_name", metavar="RUN")
@click.argument("step_name", metavar="STEP")
@stack_option
@json_option
def step_show(run_name: str, step_name: str, stack_key: str | None, as_json: bool) -> None:
    """Show step STEP of run RUN: parameters, cache key, inputs, outputs and any error."""
    from runstack.post_execution import step_to_dict

    key, run = find_run(run_name, stack_key)
    step = run.get_step(step_name)
    data = step_to_dict(step, detail=True)
    data.update(run=run.name, pipeline=run.pipeline_name, stack=key)
    if as_json:
        echo_json(data)
        return
    print_fields(
        [
            ("run", run.name),
            ("pipeline", run.pipeline_name),
            ("entrypoint", data["entrypoint"]),
            ("status", data["status"]),
            ("cached", "yes, outputs reused from an earlier run" if data["cached"] else "no"),
            ("started", fmt_time(step.start_time)),
            ("duration", fmt_duration(data["duration"])),
            ("cache key", data["cache_key"]),
            *((f"parameter {k}", repr(v)) for k, v in data["parameters"].items()),
            *((f"metric {k}", repr(v)) for k, v in data["metrics"].items()),
        ],
        title=f"Step {step.name}",
    )
    if data["inputs"]:
        print_table(
            ["input", "type", "from step"],
            [[n, i["data_type"], i["producer_step"]] for n, i in data["inputs"].items()],
        )
    if data["outputs"]:
        print_table(
            ["output", "type", "materializer", "uri"],
            [
                [n, o["data_type"], _short_type(o["materializer"]), o["uri"]]
                for n, o in data["outputs"].items()
            ],
        )
    if data["error"]:
        click.secho(f"Error: {data['error']}", fg="red")
    if data["traceback"]:
        click.echo(data["traceback"].rstrip())
