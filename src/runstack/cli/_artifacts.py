"""``runstack artifact show|read|verify``: where an output is stored, a preview of its value,
and whether its files are still those recorded."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

import click

from runstack.cli._common import (
    UserError,
    console,
    echo_json,
    json_option,
    print_fields,
    stack_option,
)
from runstack.cli._history import find_run, histories

if TYPE_CHECKING:
    from runstack.post_execution import ArtifactView, RunView


@click.group()
def artifact() -> None:
    """Inspect and preview the outputs of a step."""


def _find(run_name: str, step_name: str, output: str | None, stack_key: str | None) -> Any:
    _key, run = find_run(run_name, stack_key)
    step = run.get_step(step_name)
    return step.outputs[output] if output is not None else step.output


_ARGS = (
    click.argument("run_name", metavar="RUN"),
    click.argument("step_name", metavar="STEP"),
    click.argument("output", required=False),
)


def _artifact_args(func: Any) -> Any:
    for decorator in reversed(_ARGS):
        func = decorator(func)
    return func


@artifact.command("show", short_help="Show where an output is stored and its type.")
@_artifact_args
@stack_option
@json_option
def artifact_show(
    run_name: str, step_name: str, output: str | None, stack_key: str | None, as_json: bool
) -> None:
    """Show where output OUTPUT of STEP in RUN is stored and how it was written.

    OUTPUT may be left out when the step has a single output.
    """
    art = _find(run_name, step_name, output, stack_key)
    producer = art.producer_step
    data = {
        "id": art.id,
        "name": art.name,
        "data_type": art.data_type,
        "materializer": art.materializer,
        "uri": art.uri,
        "content_hash": art.content_hash,
        "reused_from_earlier_run": art.is_cached,
        "producer_step": producer.name,
        "producer_run": producer.run.name,
    }
    if as_json:
        echo_json(data)
        return
    print_fields(
        [
            ("type", data["data_type"]),
            ("materializer", data["materializer"]),
            ("uri", data["uri"]),
            ("content hash", data["content_hash"]),
            ("written by", f"step {producer.name} of run {producer.run.name}"),
        ],
        title=f"Artifact #{art.id}: output {art.name!r} of step {step_name}",
    )


@artifact.command("read", short_help="Print a preview of an output's value.")
@_artifact_args
@click.option(
    "--rows", "-n", metavar="N", type=click.IntRange(min=1), default=10, show_default=True,
    help="Rows of a table or items of a sequence to show.",
)  # fmt: skip
@stack_option
@json_option
def artifact_read(
    run_name: str,
    step_name: str,
    output: str | None,
    rows: int,
    stack_key: str | None,
    as_json: bool,
) -> None:
    """Load output OUTPUT of STEP in RUN and print a preview of its value.

    A DataFrame shows its shape and first rows, an array its shape, dtype and a summary,
    anything else a shortened repr. OUTPUT may be left out when the step has a single output.
    """
    art: ArtifactView = _find(run_name, step_name, output, stack_key)
    try:
        value = art.read()
    except ImportError as e:
        raise UserError(
            f"Reading output {art.name!r} needs the module {e.name or e}, which cannot be "
            f"imported here (it holds a {art.data_type}, written by {art.materializer}). Install "
            "the package that provides it (e.g. pip install 'runstack[pandas]'), or, for a module "
            "of your own, run from its folder or add that folder to PYTHONPATH."
        ) from None
    preview = describe_value(value, rows)
    if as_json:
        echo_json({"name": art.name, "data_type": art.data_type, "uri": art.uri, **preview})
        return
    out = console()
    summary = preview["type"]
    if "shape" in preview:
        summary += f", shape {tuple(preview['shape'])}"
    if "dtype" in preview:
        summary += f", dtype {preview['dtype']}"
    if "length" in preview:
        summary += f", {preview['length']} items"
    out.print(f"[bold]{art.name}[/bold]: {summary}", highlight=False)
    table = preview.get("head")
    if table is not None:
        _print_frame(table["columns"], table["rows"])
        if preview["shape"][0] > len(table["rows"]):
            click.secho(f"... {preview['shape'][0] - len(table['rows'])} more rows", dim=True)
    else:
        click.echo(preview["text"])


@artifact.command("verify", short_help="Check artifacts' files against their recorded hashes.")
@click.argument("run_name", metavar="RUN", required=False)
@click.option("--all", "every", is_flag=True, help="Verify the artifacts of every run.")
@stack_option
@json_option
def artifact_verify(
    run_name: str | None, every: bool, stack_key: str | None, as_json: bool
) -> None:
    """Check that the outputs of RUN (or of every run, with --all) are intact.

    Every file each materializer wrote must be there with its recorded size, and its content
    must match the hash recorded when it was written (read in full, whatever its size).
    Outputs a run reused from the cache are checked too; each artifact once. Exits 1 when
    any artifact is missing or corrupted.
    """
    from runstack.exceptions import ArtifactCorruptedError, ArtifactNotFoundError

    if (run_name is None) == (not every):
        raise UserError("Give a RUN to verify, or --all for every run (not both).")
    if every:
        runs: list[RunView] = [
            r for _key, h in histories(stack_key) for p in h.get_pipelines() for r in p.runs
        ]
    else:
        runs = [find_run(run_name, stack_key)[1]]  # type: ignore[arg-type]
    rows: list[dict[str, Any]] = []
    seen: set[tuple[str, int]] = set()
    for run in runs:
        for step in run.steps:
            for name, art in step.outputs.items():
                key = (art.uri, art.id)
                if key in seen:
                    continue
                seen.add(key)
                row = {"run": run.name, "step": step.name, "output": name, "id": art.id}
                try:
                    hashed = art.verify()
                    row["status"] = "ok" if hashed else "ok (sizes only: no content hash)"
                except (ArtifactCorruptedError, ArtifactNotFoundError) as e:
                    row["status"] = (
                        "corrupted" if isinstance(e, ArtifactCorruptedError) else "missing"
                    )
                    row["error"] = str(e)
                rows.append(row)
    bad = [r for r in rows if "error" in r]
    if as_json:
        echo_json({"artifacts": rows, "ok": not bad})
    else:
        for r in rows:
            line = f"{r['run']} {r['step']} {r['output']} (#{r['id']}): {r['status']}"
            click.secho(line, fg="red" if "error" in r else None)
            if "error" in r:
                click.echo(f"  {r['error']}", err=True)
        click.echo(f"{len(rows) - len(bad)} of {len(rows)} artifact(s) intact.")
    if bad:
        raise SystemExit(1)


def describe_value(value: Any, rows: int = 10) -> dict[str, Any]:
    """A small, JSON-safe summary of a value: type, shape, dtype and a head or text."""
    kind = type(value)
    out: dict[str, Any] = {"type": f"{kind.__module__}.{kind.__qualname__}"}
    module = kind.__module__.split(".")[0]
    if module == "pandas" and hasattr(value, "head") and hasattr(value, "columns"):
        head = value.head(rows)
        out["shape"] = list(value.shape)
        out["dtypes"] = {str(c): str(t) for c, t in value.dtypes.items()}
        out["head"] = {
            "columns": [str(c) for c in head.columns],
            "rows": [[_cell(v) for v in r] for r in head.itertuples(index=False, name=None)],
        }
    elif module == "pandas" and hasattr(value, "head"):  # a Series
        out["shape"] = list(value.shape)
        out["dtype"] = str(value.dtype)
        out["text"] = value.head(rows).to_string()
    elif module == "numpy" and hasattr(value, "shape") and hasattr(value, "dtype"):
        import numpy as np

        out["shape"] = list(value.shape)
        out["dtype"] = str(value.dtype)
        out["text"] = np.array2string(value, threshold=rows * 2, edgeitems=max(1, rows // 2))
    elif isinstance(value, (list, tuple)):
        out["length"] = len(value)
        items = [repr(v) for v in value[:rows]]
        more = f", ... ({len(value) - rows} more)" if len(value) > rows else ""
        out["text"] = _clip("[" + ", ".join(items) + more + "]")
    elif isinstance(value, dict):
        out["length"] = len(value)
        items = [f"{k!r}: {v!r}" for k, v in list(value.items())[:rows]]
        more = f", ... ({len(value) - rows} more)" if len(value) > rows else ""
        out["text"] = _clip("{" + ", ".join(items) + more + "}")
    else:
        out["text"] = _clip(repr(value))
    return out


def _cell(value: Any) -> Any:
    """A JSON-safe table cell: numpy scalars as Python numbers, NaN as null."""
    if hasattr(value, "item") and callable(value.item) and not hasattr(value, "__len__"):
        with contextlib.suppress(TypeError, ValueError):
            value = value.item()
    if isinstance(value, float) and value != value:
        return None
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def _clip(text: str, limit: int = 2000) -> str:
    return text if len(text) <= limit else text[:limit] + f"... ({len(text) - limit} more chars)"


def _print_frame(columns: list[str], rows: list[list[Any]]) -> None:
    from rich.table import Table

    table = Table(header_style="bold")
    for col in columns:
        table.add_column(col, overflow="fold")
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row))
    console().print(table)
