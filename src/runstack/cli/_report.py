"""``runstack run report``: one self-contained HTML file about runs, to attach anywhere."""

from __future__ import annotations

from pathlib import Path

import click

from runstack.cli._common import UserError, get_repo, stack_option
from runstack.cli._compare import pipeline_option


@click.command("report", short_help="Write an HTML report of runs (graph, timeline, diff).")
@click.argument("run_names", metavar="RUN [RUN ...]", nargs=-1, required=True)
@click.option(
    "--output",
    "-o",
    metavar="FILE",
    default="report.html",
    show_default=True,
    help="Where to write the report (an existing file is replaced).",
)
@pipeline_option
@stack_option
def run_report(
    run_names: tuple[str, ...], output: str, pipeline: str | None, stack_key: str | None
) -> None:
    """Write one HTML file about the RUNs: run graph, timeline, steps, parameters, logs
    summary and output previews; given two runs, their diff first.

    The file is self-contained (inline pictures and style, no script, no network requests):
    attach it to a pull request or a ticket. Previews read bounded parts of artifacts and
    never load pickle-based ones.

    \b
    runstack run report my-run -o my-run.html
    runstack run report run-a run-b -o a-vs-b.html
    runstack run report --pipeline training latest~1 latest -o last-two.html
    """
    from runstack.visualizers import report_html

    target = Path(output)
    if target.is_dir():
        raise UserError(f"{output} is a folder; give a file name, e.g. -o {output}/report.html")
    if not target.parent.is_dir():
        raise UserError(f"Folder {target.parent} does not exist; create it or choose another -o.")
    repo = get_repo()
    runs = [repo.get_run(name, pipeline, stack_key) for name in run_names]  # before any work
    if len({r.id for r in runs}) != len(runs):
        raise UserError("The same run is named twice (latest and its name?); name each once.")
    try:
        html = report_html(runs)
    except ImportError as e:  # the layout library is imported on first use
        raise UserError(str(e)) from None
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_text(html, encoding="utf-8")
    tmp.replace(target)  # a reader never sees half a report
    click.echo(f"Wrote {target} ({len(html.encode()):,} bytes, {len(runs)} run(s)).")
