"""``runstack up``: serve the dashboard over a stack's history (read-only)."""

from __future__ import annotations

import click

from runstack.cli._common import UserError, get_repo


@click.command("up", short_help="Serve the dashboard (read-only) in your browser.")
@click.option(
    "--stack",
    "-s",
    "stack_key",
    metavar="STACK",
    help="Serve this stack's history (default: the active stack).",
)
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on. Any other than loopback requires a token.",
)
@click.option(
    "--port",
    default=8237,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port to listen on (0: any free port).",
)
@click.option(
    "--token",
    metavar="TOKEN",
    help="Require this token (default: $RUNSTACK_DASHBOARD_TOKEN; on a non-loopback address "
    "one is generated and printed once if neither is set).",
)
def up(stack_key: str | None, host: str, port: int, token: str | None) -> None:
    """Serve a web dashboard of the recorded runs: pipelines, runs, steps, logs, artifact
    previews and run comparisons, with a JSON API under /api.

    \b
    The metadata store is opened read-only: browsing never changes it.
    Stop with Ctrl-C. Needs: pip install 'runstack[dashboard]'
    """
    try:
        from runstack.dashboard import open_source, serve
    except ImportError as e:
        raise UserError(
            f"The dashboard needs {e.name or 'its dependencies'}, which is not installed: "
            "pip install 'runstack[dashboard]'"
        ) from None
    from runstack.dashboard._serve import choose_token

    choose_token(host, token)  # a bad token is refused before the store is opened
    source = open_source(get_repo(), stack_key)
    try:
        serve(source, host=host, port=port, token=token, echo=click.echo)
    except KeyboardInterrupt:  # a second Ctrl-C while shutting down
        click.echo("Dashboard stopped.")
