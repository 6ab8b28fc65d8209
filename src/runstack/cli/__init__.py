"""The ``runstack`` command line."""

from runstack.cli._main import main

__all__ = ["main"]
