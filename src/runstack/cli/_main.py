"""Placeholder entry point; the full CLI lives in its own modules."""

from __future__ import annotations

import click


@click.group()
def main() -> None:
    """runstack: recorded, cached ML pipelines."""
