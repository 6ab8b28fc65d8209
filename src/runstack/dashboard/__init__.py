"""The dashboard: a read-only web app and REST API over a stack's recorded history.

Started with ``runstack up`` (``pip install 'runstack[dashboard]'``); see docs/dashboard.md.
FastAPI, uvicorn and Jinja2 are imported only here, never by ``import runstack`` or the CLI's
other commands.
"""

from runstack.dashboard._app import create_app
from runstack.dashboard._data import Source
from runstack.dashboard._serve import open_source, serve

__all__ = ["Source", "create_app", "open_source", "serve"]
